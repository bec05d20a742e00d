// berth login [REGISTRY] / berth logout [REGISTRY]: store or remove credentials the way docker
// and podman do (config.json auths, or the configured credential helper). The password comes
// from a prompt (never echoed) or --password-stdin; it is checked against the registry first. When
// the registry's token server answers the login with a refresh token (offline_token=true), that is
// stored as docker's "identitytoken" instead of the password.
import type { Command } from 'commander';
import { UsageError } from '../client/errors.js';
import { prompt, readStdin } from './prompt.js';
import { DEFAULT_REGISTRY, normalizeRegistryHost } from '../oci/image-reference.js';
import { say, transportOptions, type OutputFlags, type TransportFlags } from './client-options.js';

interface LoginFlags extends TransportFlags, OutputFlags { username?: string; password?: string; passwordStdin?: boolean }

export function registerLogin(program: Command): void {
  const login = program
    .command('login')
    .description('log in to a registry: check the credentials and store them like docker login')
    .argument('[registry]', 'registry host (default: docker.io)')
    .option('-u, --username <name>', 'user name')
    .option('-p, --password <password>', 'password (insecure: it shows in the process list; prefer --password-stdin)')
    .option('--password-stdin', 'read the password from standard input')
    .option('-q, --quiet', 'print nothing on success');
  transportOptions(login);
  login.action(async (registryArg: string | undefined, flags: LoginFlags) => {
    const registry = normalizeRegistryHost(registryArg ?? DEFAULT_REGISTRY);
    if (flags.password && flags.passwordStdin) throw new UsageError('--password and --password-stdin exclude each other');
    let username = flags.username;
    let password = flags.password;
    if (flags.passwordStdin) {
      if (!username) throw new UsageError('--password-stdin needs --username');
      password = await readStdin();
    }
    username ??= await prompt('Username: ', false);
    password ??= await prompt('Password: ', true);
    if (!username) throw new UsageError('a user name is required');
    if (!password) throw new UsageError('a password is required');
    const creds = { username, password };
    const { Transport } = await import('../client/transport.js');
    const transport = new Transport(registry, {
      insecure: flags.insecure, caCerts: flags.caCert, credentials: async () => creds, offlineToken: true,
      ...(process.env.BERTH_RETRY_BASE_MS ? { retryBaseMs: Number(process.env.BERTH_RETRY_BASE_MS) } : {}),
    });
    const { identityToken } = await transport.verifyCredentials();
    const { storeCredentials } = await import('../client/auth-config.js');
    // a refresh token from the token server is stored instead of the password, as docker login does:
    // it can be revoked on the server without a password change
    const stored = identityToken ? { username, identityToken } : creds;
    const where = await storeCredentials(registry, stored, flags.authfile ? { authFile: flags.authfile } : {});
    say(flags, `Credentials stored in ${where}`);
    if (!flags.quiet) process.stdout.write('Login Succeeded\n');
  });

  const logout = program
    .command('logout')
    .description('remove the stored credentials for a registry')
    .argument('[registry]', 'registry host (default: docker.io)')
    .option('--authfile <file>', 'credentials file to remove them from (besides the default ones)');
  logout.action(async (registryArg: string | undefined, flags: { authfile?: string }) => {
    const registry = normalizeRegistryHost(registryArg ?? DEFAULT_REGISTRY);
    const { removeCredentials } = await import('../client/auth-config.js');
    const found = await removeCredentials(registry, flags.authfile ? { authFile: flags.authfile } : {});
    process.stdout.write(found ? `Removed login credentials for ${registry}\n` : `Not logged in to ${registry}\n`);
  });
}
