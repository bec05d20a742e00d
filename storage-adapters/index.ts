// Adapters are registered by name; the config's single storage section picks one.
import type { StorageAdapter } from './types.js';
import { FilesystemAdapter, type FilesystemOptions } from './filesystem.js';

export type AdapterFactory = (options: Record<string, unknown>) => StorageAdapter | Promise<StorageAdapter>;

const registry = new Map<string, AdapterFactory>();

export function registerAdapter(name: string, factory: AdapterFactory): void {
  registry.set(name, factory);
}

export function adapterNames(): string[] {
  return [...registry.keys()].sort();
}

export async function createAdapter(name: string, options: Record<string, unknown>): Promise<StorageAdapter> {
  const factory = registry.get(name);
  if (!factory) throw new Error(`unknown storage driver "${name}" (known: ${adapterNames().join(', ')})`);
  return factory(options);
}

registerAdapter('filesystem', (o) => new FilesystemAdapter(o as unknown as FilesystemOptions));
registerAdapter('s3', async (o) => (await import('./s3.js')).S3Adapter.fromConfig(o));

export * from './types.js';
