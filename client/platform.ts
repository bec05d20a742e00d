// Platforms ("linux/arm64/v8") and choosing one manifest from an image index, the way
// containerd's default matcher does: os and architecture must match; a variant asked for must
// match (with the usual defaults: arm64 → v8, arm → v7, amd64 → v1); otherwise the best variant wins.
import type { Descriptor } from '../oci/manifest.js';
import { UsageError } from './errors.js';

export interface Platform { os: string; architecture: string; variant?: string }

const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64', mips64el: 'mips64le' };
const ARCH_ALIASES: Record<string, string> = { x86_64: 'amd64', 'x86-64': 'amd64', aarch64: 'arm64', armhf: 'arm', armel: 'arm', i386: '386' };

export function hostPlatform(): Platform {
  const p: Platform = { os: process.platform === 'win32' ? 'windows' : process.platform, architecture: ARCH[process.arch] ?? process.arch };
  if (p.architecture === 'arm64') p.variant = 'v8';
  return p;
}

export function parsePlatform(text: string): Platform {
  const parts = text.trim().toLowerCase().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((x) => !/^[a-z0-9._-]+$/.test(x))) {
    throw new UsageError(`invalid platform "${text.slice(0, 100)}": expected os/arch[/variant], e.g. linux/arm64/v8`);
  }
  const architecture = ARCH_ALIASES[parts[1]!] ?? parts[1]!;
  return { os: parts[0]!, architecture, ...(parts[2] ? { variant: parts[2] } : {}) };
}

export function formatPlatform(p: Partial<Platform> | undefined): string {
  if (!p?.os || !p.architecture) return 'unknown';
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

function defaultVariant(arch: string): string | undefined {
  return arch === 'arm64' ? 'v8' : arch === 'arm' ? 'v7' : arch === 'amd64' ? 'v1' : undefined;
}

/** Variants a platform can run, best first (arm/v7 can run v6 and v5; amd64/v3 runs v2 and v1). */
function compatibleVariants(arch: string, variant: string | undefined): string[] {
  const v = variant ?? defaultVariant(arch);
  if (!v) return [''];
  const m = /^v(\d+)$/.exec(v);
  if (!m) return [v];
  const n = Number(m[1]);
  const floor = arch === 'arm' ? 5 : arch === 'arm64' ? 8 : 1;
  const out: string[] = [];
  for (let i = n; i >= floor; i--) out.push(`v${i}`);
  return out;
}

/** Picks the manifest for `want` from an index's descriptors; undefined when none fits. */
export function selectPlatform(manifests: readonly Descriptor[], want: Platform): Descriptor | undefined {
  const variants = compatibleVariants(want.architecture, want.variant);
  let best: { d: Descriptor; rank: number } | undefined;
  for (const d of manifests) {
    const p = d.platform as Partial<Platform> | undefined;
    if (!p || p.os !== want.os || (ARCH_ALIASES[p.architecture ?? ''] ?? p.architecture) !== want.architecture) continue;
    const variant = p.variant || defaultVariant(want.architecture) || '';
    const rank = variants.indexOf(variant);
    if (rank < 0) continue;
    if (!best || rank < best.rank) best = { d, rank };
  }
  return best?.d;
}

export function listPlatforms(manifests: readonly Descriptor[]): string[] {
  return manifests.map((d) => formatPlatform(d.platform as Partial<Platform> | undefined)).filter((p) => p !== 'unknown');
}
