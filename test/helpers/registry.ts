// Test registries: an in-process express app over a temp filesystem store (for supertest),
// or a real listening server (for the CLI, skopeo, podman…). Both clean up after themselves.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp, type AppOptions } from '../../server/app.js';
import { loadConfig } from '../../server/config.js';
import { startRegistry, type RunningRegistry } from '../../server/main.js';
import { FilesystemAdapter } from '../../storage-adapters/filesystem.js';
import { pino } from 'pino';

export interface TestApp {
  app: ReturnType<typeof createApp>;
  root: string;
  storage: FilesystemAdapter;
  cleanup(): Promise<void>;
}

export async function tempDir(prefix = 'berth-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export async function testApp(options: AppOptions = {}): Promise<TestApp> {
  const root = await tempDir();
  const storage = new FilesystemAdapter({ rootdirectory: root });
  const app = createApp({ deleteEnabled: true, ...options }, { storage });
  return { app, root, storage, cleanup: () => rm(root, { recursive: true, force: true }) };
}

export interface TestServer extends RunningRegistry {
  /** host:port, e.g. 127.0.0.1:40123 */
  host: string;
  root: string;
  stop(): Promise<void>;
}

/** A real registry listening on a free loopback port. Extra env: REGISTRY_* overrides. */
export async function startTestServer(env: Record<string, string> = {}, root?: string): Promise<TestServer> {
  const dir = root ?? (await tempDir());
  const config = loadConfig({
    env: {
      REGISTRY_HTTP_ADDR: '127.0.0.1:0',
      REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: dir,
      REGISTRY_STORAGE_DELETE_ENABLED: 'true',
      REGISTRY_LOG_LEVEL: 'silent',
      ...env,
    },
  });
  const running = await startRegistry(config, pino({ level: 'silent' }));
  const host = new URL(running.url).host;
  return {
    ...running,
    host,
    root: dir,
    async stop() {
      await running.close();
      if (!root) await rm(dir, { recursive: true, force: true });
    },
  };
}
