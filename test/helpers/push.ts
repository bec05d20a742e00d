// Small pushing helpers over supertest, so tests read as behaviour, not plumbing.
import assert from 'node:assert/strict';
import request from 'supertest';
import type { Express } from 'express';
import { digestOf, type Digest } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';

export async function pushBlob(app: Express, name: string, data: Buffer | string): Promise<Digest> {
  const body = Buffer.from(data);
  const digest = digestOf(body);
  const res = await request(app).post(`/v2/${name}/blobs/uploads/?digest=${digest}`)
    .set('Content-Type', 'application/octet-stream').send(body);
  assert.equal(res.status, 201, `blob push failed: ${res.status} ${res.text}`);
  return digest;
}

export interface PushedImage { manifest: Buffer; digest: Digest; config: Digest; layers: Digest[] }

export function imageManifest(config: { digest: Digest; size: number }, layers: { digest: Digest; size: number }[], extra: Record<string, unknown> = {}): Buffer {
  return Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, ...config },
    layers: layers.map((l) => ({ mediaType: MediaType.OciLayerTarGzip, ...l })),
    ...extra,
  }));
}

/** Pushes a config + layers + manifest under a tag (or by digest when tag is undefined). */
export async function pushImage(app: Express, name: string, tag: string | undefined, opts: { layers?: string[]; extra?: Record<string, unknown> } = {}): Promise<PushedImage> {
  const configBody = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, tag }));
  const config = await pushBlob(app, name, configBody);
  const layerBodies = (opts.layers ?? ['layer-one', 'layer-two']).map((s) => Buffer.from(s));
  const layers: Digest[] = [];
  for (const l of layerBodies) layers.push(await pushBlob(app, name, l));
  const manifest = imageManifest({ digest: config, size: configBody.length },
    layers.map((d, i) => ({ digest: d, size: layerBodies[i]!.length })), opts.extra);
  const digest = digestOf(manifest);
  const res = await request(app).put(`/v2/${name}/manifests/${tag ?? digest}`)
    .set('Content-Type', MediaType.OciManifest).send(manifest.toString());
  assert.equal(res.status, 201, `manifest push failed: ${res.status} ${res.text}`);
  return { manifest, digest, config, layers };
}

export function errorCode(res: { body: unknown }): string | undefined {
  return (res.body as { errors?: { code: string }[] })?.errors?.[0]?.code;
}
