// Auth fixtures: htpasswd files, rules files, and apps/servers with auth switched on.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { createApp } from '../../server/app.js';
import { createAuth, type Auth } from '../../server/auth/index.js';
import type { AuthConfig, TokenConfig } from '../../server/config.js';
import { FilesystemAdapter } from '../../storage-adapters/filesystem.js';
import { tempDir } from './registry.js';

export async function writeHtpasswd(path: string, users: Record<string, string>): Promise<void> {
  // cost 4 keeps tests fast; the server accepts any bcrypt cost
  await writeFile(path, Object.entries(users).map(([u, p]) => `${u}:${bcrypt.hashSync(p, 4).replace(/^\$2b\$/, '$2y$')}`).join('\n') + '\n');
}

export const RULES = `
admins: [root]
public: ["library/*", "acme/docs"]
teams:
  acme:
    members: [alice, bob]
    grants:
      - { repositories: "acme/*", actions: [pull, push] }
rules:
  - { users: [carol], repositories: "acme/app", actions: [pull] }
  - { users: ["*"], repositories: "shared/**", actions: [pull] }
`;

export const PASSWORDS = { alice: 'alice-pw', bob: 'bob-pw', carol: 'carol-pw', root: 'root-pw' };

export interface AuthFixture {
  dir: string;
  htpasswd: string;
  rules: string;
  storage: FilesystemAdapter;
  auth: Auth;
  app: ReturnType<typeof createApp>;
  config: AuthConfig;
}

export function tokenConfig(dir: string, over: Partial<TokenConfig> = {}): TokenConfig {
  return {
    service: 'berth-test', issuer: 'berth-test-issuer', builtin: true, htpasswd: join(dir, 'htpasswd'),
    signingkey: join(dir, 'state', 'token-signing-key.pem'), algorithm: 'ES256', expirationSec: 300,
    refreshExpirationSec: 3600, statedirectory: join(dir, 'state'), ...over,
  };
}

export async function authFixture(mode: 'htpasswd' | 'token', over: Partial<TokenConfig> = {}, withRules = true): Promise<AuthFixture> {
  const dir = await tempDir('berth-auth-');
  const htpasswd = join(dir, 'htpasswd');
  const rules = join(dir, 'access.yml');
  await writeHtpasswd(htpasswd, PASSWORDS);
  await writeFile(rules, RULES);
  // no sign-in throttling: tests send wrong passwords on purpose, many at a time (login-throttle.test.ts tests it)
  const config: AuthConfig = mode === 'htpasswd'
    ? { mode, realm: 'berth-test', htpasswd, access: withRules ? rules : undefined, maxLoginFailures: 0 }
    : { mode, realm: 'berth', access: withRules ? rules : undefined, token: tokenConfig(dir, over), maxLoginFailures: 0 };
  const auth = await createAuth(config);
  const storage = new FilesystemAdapter({ rootdirectory: join(dir, 'data') });
  const app = createApp({ deleteEnabled: true }, { storage, auth });
  return { dir, htpasswd, rules, storage, auth, app, config };
}

export function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}
