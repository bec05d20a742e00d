// What one client command needs: transports (one per registry, sharing the token cache for the
// whole command), credentials from the auth files, and sources/destinations opened from locations.
import { parseImageReference, type ImageReference } from '../oci/image-reference.js';
import { getCredentials, type AuthConfigOptions } from './auth-config.js';
import { UsageError } from './errors.js';
import { ImageLayout } from './image-layout.js';
import { LayoutDestination, LayoutSource, RegistryDestination, RegistrySource, type ImageDestination, type ImageSource } from './image-source.js';
import { localName, localStoreDir, type Location } from './location.js';
import { RegistryClient } from './registry-client.js';
import { Transport, type TransportOptions } from './transport.js';

export interface ClientOptions {
  /** Registries (or all, when true) allowed over plain HTTP / unverified TLS. */
  insecure?: boolean;
  caCerts?: string[];
  authFile?: string;
  retries?: number;
  retryBaseMs?: number;
  /** Uploads up to this size go in one request. */
  monolithicMax?: number;
  chunkSize?: number;
  env?: NodeJS.ProcessEnv;
  onRetry?: TransportOptions['onRetry'];
}

export class ClientContext {
  private readonly transports = new Map<string, Transport>();

  constructor(readonly opts: ClientOptions = {}) {}

  get authOptions(): AuthConfigOptions {
    return { ...(this.opts.authFile ? { authFile: this.opts.authFile } : {}), ...(this.opts.env ? { env: this.opts.env } : {}) };
  }

  transport(registry: string): Transport {
    let t = this.transports.get(registry);
    if (!t) {
      t = new Transport(registry, {
        insecure: this.opts.insecure,
        caCerts: this.opts.caCerts,
        retries: this.opts.retries,
        retryBaseMs: this.opts.retryBaseMs,
        env: this.opts.env,
        onRetry: this.opts.onRetry,
        credentials: () => getCredentials(registry, this.authOptions),
      });
      this.transports.set(registry, t);
    }
    return t;
  }

  client(ref: Pick<ImageReference, 'registry' | 'repository'>): RegistryClient {
    return new RegistryClient(this.transport(ref.registry), ref.repository);
  }

  async localStore(create: boolean): Promise<ImageLayout> {
    return ImageLayout.open(localStoreDir(this.opts.env), { create });
  }

  async openSource(loc: Location): Promise<ImageSource> {
    switch (loc.kind) {
      case 'registry': return new RegistrySource(this.client(loc.ref), loc.ref);
      case 'oci': return new LayoutSource(await ImageLayout.open(loc.dir), loc.tag);
      case 'docker-archive': {
        // loaded on demand: tar and gzip code that registry and layout copies never need
        const { DockerArchiveSource } = await import('./docker-archive.js');
        return new DockerArchiveSource(loc.path, loc.ref);
      }
      case 'local': return new LayoutSource(await this.localStore(false), localName(loc.ref));
    }
  }

  async openDestination(loc: Location): Promise<ImageDestination> {
    switch (loc.kind) {
      case 'registry':
        if (loc.ref.digest && loc.ref.tag) throw new UsageError('a destination takes a tag or a digest, not both');
        return new RegistryDestination(this.client(loc.ref), loc.ref, { monolithicMax: this.opts.monolithicMax, chunkSize: this.opts.chunkSize });
      case 'oci': return new LayoutDestination(await ImageLayout.open(loc.dir, { create: true }), loc.tag);
      case 'docker-archive': {
        const { DockerArchiveDestination } = await import('./docker-archive.js');
        return new DockerArchiveDestination(loc.path, loc.ref ? parseImageReference(loc.ref) : undefined);
      }
      case 'local': return new LayoutDestination(await this.localStore(true), localName(loc.ref));
    }
  }
}

