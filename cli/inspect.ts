// berth inspect IMAGE: a summary of an image (digest, platform, layers, config essentials), or
// --raw the manifest bytes exactly as served, or --config the image configuration.
import type { Command } from 'commander';
import { parseLocation } from '../client/location.js';
import { parseManifest, type Descriptor } from '../oci/manifest.js';
import { formatPlatform, hostPlatform, listPlatforms, parsePlatform, selectPlatform, type Platform } from '../client/platform.js';
import { NotFoundError } from '../client/errors.js';
import type { ImageSource, ManifestBlob } from '../client/image-source.js';
import { clientContext, printJson, transportOptions, type TransportFlags } from './client-options.js';

interface InspectFlags extends TransportFlags { raw?: boolean; config?: boolean; platform?: string; format?: string }

async function readConfig(src: ImageSource, d: Descriptor): Promise<Buffer> {
  const { stream } = await src.openBlob(d, 0);
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of stream) { n += (c as Buffer).length; if (n > 8 * 1024 * 1024) break; parts.push(c as Buffer); }
  return Buffer.concat(parts);
}

export async function platformManifest(src: ImageSource, root: ManifestBlob, platform?: Platform): Promise<ManifestBlob> {
  const parsed = parseManifest(root.bytes, root.descriptor.mediaType);
  if (parsed.kind !== 'index') return root;
  const want = platform ?? hostPlatform();
  const pick = selectPlatform(parsed.manifests, want);
  if (!pick) throw new NotFoundError(`no manifest for platform ${formatPlatform(want)} (available: ${listPlatforms(parsed.manifests).join(', ')})`);
  return { descriptor: pick, bytes: await src.manifest(pick) };
}

export function registerInspect(program: Command): void {
  const cmd = program
    .command('inspect')
    .description('show an image: digest, media type, platforms, layers and configuration')
    .argument('<image>', 'registry reference, oci:<dir>[:tag], docker-archive:<file> or local:<reference>')
    .option('--raw', 'print the manifest (or index) exactly as stored, byte for byte')
    .option('--config', 'print the image configuration (of --platform\'s manifest for an index)')
    .option('--platform <os/arch[/variant]>', 'the platform to describe for a multi-platform image')
    .option('-f, --format <template>', 'a Go template over the summary, as skopeo\'s: e.g. \'{{.Digest}}\' or \'{{range .Layers}}{{.Digest}} {{end}}\'');
  transportOptions(cmd);
  cmd.action(async (image: string, flags: InspectFlags) => {
    const show = async (summary: Record<string, unknown>) => {
      if (flags.format === undefined) printJson(summary);
      else process.stdout.write((await import('./list-format.js')).formatEach(flags.format, [summary]));
    };
    if (flags.format !== undefined) await import('./list-format.js').then((f) => f.formatEach(flags.format!, [])); // a broken template fails before any request
    const ctx = await clientContext(flags);
    const src = await ctx.openSource(parseLocation(image));
    const root = await src.root();
    if (flags.raw) { process.stdout.write(root.bytes); return; }
    const parsedRoot = parseManifest(root.bytes, root.descriptor.mediaType);
    const platform = flags.platform ? parsePlatform(flags.platform) : undefined;
    if (flags.config) {
      const m = await platformManifest(src, root, platform);
      const parsed = parseManifest(m.bytes, m.descriptor.mediaType);
      const config = await readConfig(src, parsed.blobs[0]!);
      process.stdout.write(config);
      if (!config.toString().endsWith('\n')) process.stdout.write('\n');
      return;
    }
    const summary: Record<string, unknown> = {
      Name: image,
      Digest: root.descriptor.digest,
      MediaType: root.descriptor.mediaType,
      Size: root.descriptor.size,
    };
    if (parsedRoot.kind === 'index' && !platform) {
      summary.Manifests = parsedRoot.manifests.map((d) => ({ Digest: d.digest, MediaType: d.mediaType, Size: d.size, Platform: formatPlatform(d.platform as Partial<Platform>) }));
      await show(summary);
      return;
    }
    const m = await platformManifest(src, root, platform);
    const parsed = parseManifest(m.bytes, m.descriptor.mediaType);
    if (m !== root) summary.PlatformDigest = m.descriptor.digest;
    const cfg = JSON.parse((await readConfig(src, parsed.blobs[0]!)).toString('utf8') || '{}') as Record<string, any>;
    const layers = (JSON.parse(m.bytes.toString('utf8')) as { layers?: Descriptor[] }).layers ?? [];
    Object.assign(summary, {
      Platform: formatPlatform({ os: cfg.os, architecture: cfg.architecture, variant: cfg.variant }),
      Created: cfg.created,
      Layers: layers.map((l) => ({ Digest: l.digest, MediaType: l.mediaType, Size: l.size })),
      Size: layers.reduce((a, l) => a + l.size, 0),
      Env: cfg.config?.Env ?? [],
      Entrypoint: cfg.config?.Entrypoint ?? null,
      Cmd: cfg.config?.Cmd ?? null,
      Labels: cfg.config?.Labels ?? {},
      ...(parsed.annotations ? { Annotations: parsed.annotations } : {}),
    });
    await show(summary);
  });
}
