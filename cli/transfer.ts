// The shared core of push, pull and copy: open both ends, run the copy engine, report.
// Heavy (the whole client): push, pull and copy import this module only inside their actions.
import { copyImage, type CopyResult } from '../client/copy.js';
import { ContentRemovedError, IntegrityError } from '../client/errors.js';
import type { DockerArchiveSource } from '../client/docker-archive.js';
import { familiarReference } from '../oci/image-reference.js';
import type { ClientContext } from '../client/context.js';
import { describeLocation, localName, type Location } from '../client/location.js';
import { LayoutDestination, type ImageSource } from '../client/image-source.js';
import { REF_NAME } from '../client/image-layout.js';
import { formatBytes } from '../client/progress.js';
import { clientContext, progressFor, transferSettings, type OutputFlags, type TransferFlags, type TransportFlags } from './client-options.js';

export type TransferCommandFlags = TransportFlags & OutputFlags & TransferFlags & { unpack?: boolean };

function destinationTags(src: Location, dst: Location, sourceTags: string[]): string[] {
  switch (dst.kind) {
    case 'registry': return dst.ref.tag && !dst.ref.digest ? [dst.ref.tag] : [];
    case 'local': return [localName(dst.ref)];
    case 'oci':
      if (dst.tag) return [dst.tag];
      if (src.kind === 'registry' || src.kind === 'local') return src.ref.tag ? [src.ref.tag] : [];
      if (src.kind === 'oci' && src.tag) return [src.tag];
      return [];
    case 'docker-archive':
      if (dst.ref) return [];
      if (src.kind === 'registry' || src.kind === 'local') return src.ref.tag ? [familiarReference({ ...src.ref, digest: undefined })] : [];
      return sourceTags;
  }
}

/** Where the report goes (stdout; `run` pulling a missing image sends it to stderr). */
export interface ReportOutput { write(text: string): unknown }

export async function transfer(srcLoc: Location, dstLoc: Location, flags: TransferCommandFlags, verb: string, out: ReportOutput = process.stdout): Promise<CopyResult> {
  const ctx = await clientContext(flags);
  const src = await ctx.openSource(srcLoc);
  try {
    return await transferFrom(src, srcLoc, dstLoc, ctx, flags, verb, out);
  } finally {
    await src.close?.();
  }
}

async function transferFrom(src: ImageSource, srcLoc: Location, dstLoc: Location, ctx: ClientContext, flags: TransferCommandFlags, verb: string, out: ReportOutput): Promise<CopyResult> {
  const settings = transferSettings(flags);
  // the registry's /v2/ ping (scheme and auth challenge) runs while the destination is opened
  // (an OCI layout's files are created and fsynced meanwhile)
  const ping = srcLoc.kind === 'registry' ? ctx.transport(srcLoc.ref.registry).ping() : undefined;
  ping?.catch(() => undefined); // handled below (or moot when the destination fails to open)
  const dst = await ctx.openDestination(dstLoc);
  if (ping) {
    try { await ping; } catch (e) { await dst.abort?.(); throw e; }
  }
  const started = Date.now();
  let sourceTags: string[] = [];
  if (srcLoc.kind === 'docker-archive') {
    const archive = src as DockerArchiveSource;
    await archive.root();
    sourceTags = archive.repoTags;
  }
  // into the local store, as root: layers are unpacked into snapshots while the pull runs, as docker pull does
  const openUnpacker = async () => (dstLoc.kind === 'local' && flags.unpack !== false
    ? (await import('../runtime/pull-unpack.js')).PullUnpacker.open(localName(dstLoc.ref)) : undefined);
  let unpacker = await openUnpacker();
  let result: CopyResult;
  let unpacked = 0;
  const tags = destinationTags(srcLoc, dstLoc, sourceTags);
  for (let attempt = 1; ; attempt++) {
    try {
      result = await copyImage(src, dst, {
        all: settings.all,
        ...(settings.platform ? { platform: settings.platform } : {}),
        jobs: settings.jobs,
        referrers: settings.referrers,
        tags,
        progress: progressFor(flags),
        ...(unpacker ? { observer: unpacker.observer } : {}),
      });
      break;
    } catch (e) {
      await unpacker?.cancel();
      // a blob found in place was deleted by a concurrent rmi or prune before the image was named:
      // copy again, which fetches what is missing now (and unpacks what went with it)
      if (!(e instanceof ContentRemovedError) || attempt === 3) throw e;
      unpacker = await openUnpacker();
    }
  }
  if (unpacker) {
    try { unpacked = await unpacker.finish(); } catch (e) {
      // an image that cannot be unpacked (a corrupt or hostile layer) does not keep the names it was just given
      if (dst instanceof LayoutDestination) await dst.layout.updateEntries((ms) => ms.filter((m) => !(m.digest === result.digest && tags.includes(m.annotations?.[REF_NAME] ?? ''))));
      throw e;
    }
  }
  if (dstLoc.kind === 'registry' && dstLoc.ref.digest && dstLoc.ref.digest !== result.digest) {
    throw new IntegrityError(`copied manifest has digest ${result.digest}, not the ${dstLoc.ref.digest} the destination names`);
  }
  const seconds = (Date.now() - started) / 1000;
  if (flags.json) {
    out.write(`${JSON.stringify({ source: describeLocation(srcLoc), destination: describeLocation(dstLoc), ...result, ...(unpacker ? { unpackedLayers: unpacked } : {}), seconds }, null, 2)}\n`);
  } else if (flags.quiet) {
    out.write(`${result.digest}\n`);
  } else {
    const b = result.blobs;
    const parts = [`${b.copied + b.resumed} copied`, `${b.existed} already there`];
    if (b.mounted) parts.push(`${b.mounted} mounted`);
    if (b.resumed) parts.push(`${b.resumed} resumed (${formatBytes(result.resumedBytes)} not fetched again)`);
    out.write(`${verb} ${describeLocation(srcLoc)} → ${describeLocation(dstLoc)}${result.platform ? ` (${result.platform})` : ''}\n`);
    out.write(`Digest: ${result.digest}\n`);
    out.write(`Blobs: ${parts.join(', ')}; ${formatBytes(result.bytes)} in ${seconds.toFixed(1)} s${result.referrers ? `; ${result.referrers} referrers` : ''}${unpacked ? `; ${unpacked} layer${unpacked === 1 ? "" : "s"} unpacked` : ''}\n`);
  }
  return result;
}

export { requireRegistry } from './client-options.js';
