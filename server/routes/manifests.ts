// GET/HEAD/PUT/DELETE /v2/<name>/manifests/<reference>
import type { Request } from 'express';
import { RegistryError } from '../errors.js';
import { MANIFEST_MAX_BYTES, parseReference } from '../registry/manifest-store.js';
import { manifestReferences, parseManifest, type Descriptor } from '../../oci/manifest.js';
import { notify, queryStrings, repoName, requireDeletes, type Handler } from './context.js';

const tooLarge = () => new RegistryError('SIZE_INVALID', { limit: MANIFEST_MAX_BYTES }, {
  status: 413, message: `manifest is larger than the ${MANIFEST_MAX_BYTES}-byte limit`,
});

/** Manifests are the one thing read into memory, and only up to the cap. */
async function readManifestBody(req: Request): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > MANIFEST_MAX_BYTES) {
    req.resume();
    throw tooLarge();
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > MANIFEST_MAX_BYTES) { req.resume(); throw tooLarge(); }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

const sendManifest: Handler = async (ctx, req, res) => {
  const name = repoName(ctx.params[0]!);
  const ref = parseReference(ctx.params[1]!);
  const { descriptor, body } = await ctx.registry.manifests.get(name, ref);
  res.setHeader('Content-Type', descriptor.mediaType);
  res.setHeader('Docker-Content-Digest', descriptor.digest);
  res.setHeader('ETag', `"${descriptor.digest}"`);
  res.setHeader('Content-Length', body.length);
  if (req.headers['if-none-match'] === `"${descriptor.digest}"`) {
    res.status(304).end();
    return;
  }
  res.status(200);
  if (req.method === 'HEAD') { res.end(); return; }
  res.end(body);
  notify(ctx, req, 'pull', `/v2/${name}/manifests/${descriptor.digest}`, {
    mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size, repository: name,
    ...(ref.tag !== undefined ? { tag: ref.tag } : {}), ...(ctx.notifier?.includeReferences ? { references: referencesOf(body, descriptor.mediaType) } : {}),
  });
};

/** What a manifest refers to (its config and layers, or an index's manifests), for notifications.events.includereferences. */
function referencesOf(body: Buffer, mediaType: string): Descriptor[] {
  try { return manifestReferences(parseManifest(body, mediaType)); } catch { return []; }
}

export const getManifest: Handler = sendManifest;
export const headManifest: Handler = sendManifest;

export const putManifest: Handler = async (ctx, req, res) => {
  const name = repoName(ctx.params[0]!);
  const ref = parseReference(ctx.params[1]!, true);
  const extraTags = queryStrings(req, 'tag');
  if (extraTags.length && ref.tag !== undefined) {
    throw new RegistryError('MANIFEST_INVALID', undefined, { message: 'the tag query parameter is only allowed when pushing by digest' });
  }
  const body = await readManifestBody(req);
  const result = await ctx.registry.manifests.put(name, ref, body, req.headers['content-type'], extraTags);
  res.status(201);
  res.setHeader('Location', `/v2/${name}/manifests/${result.digest}`);
  res.setHeader('Docker-Content-Digest', result.digest);
  if (result.subject) res.setHeader('OCI-Subject', result.subject);
  if (extraTags.length) res.setHeader('OCI-Tag', result.tags);
  res.setHeader('Content-Length', 0);
  res.end();
  const target = { mediaType: result.mediaType, digest: result.digest, size: body.length, repository: name, references: result.references };
  const path = `/v2/${name}/manifests/${result.digest}`;
  if (result.tags.length === 0) notify(ctx, req, 'push', path, target);
  for (const tag of result.tags) notify(ctx, req, 'push', path, { ...target, tag });
};

export const deleteManifest: Handler = async (ctx, req, res) => {
  const name = repoName(ctx.params[0]!);
  requireDeletes(ctx);
  const ref = parseReference(ctx.params[1]!);
  const untagged = await ctx.registry.manifests.delete(name, ref);
  res.status(202).setHeader('Content-Length', 0);
  res.end();
  notify(ctx, req, 'delete', undefined, { repository: name, ...ref });
  // the tags that went with it, one event each, as distribution sends them: a listener keeping track of tags sees them go
  for (const tag of untagged) notify(ctx, req, 'delete', undefined, { repository: name, tag });
};
