// berth serve: run the registry.
import type { Command } from 'commander';
import { UsageError } from './errors.js';

interface ServeFlags {
  config?: string; addr?: string; root?: string; deleteEnabled?: boolean; readOnly?: boolean; logLevel?: string;
  tlsCert?: string; tlsKey?: string; tlsSelfSigned?: boolean; tlsName?: string[];
  auth?: string; htpasswd?: string; access?: string;
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the registry (HTTP on :5000, filesystem storage under ./data unless configured otherwise)')
    .argument('[config]', 'YAML configuration file (same as --config)')
    .option('-c, --config <file>', 'YAML configuration file, in the shape of distribution\'s config.yml')
    .option('-a, --addr <host:port>', 'listen address (http.addr), e.g. :5000 or 127.0.0.1:5077')
    .option('-r, --root <dir>', 'filesystem storage root (storage.filesystem.rootdirectory)')
    .option('--delete-enabled', 'allow DELETE of manifests, tags and blobs (storage.delete.enabled)')
    .option('--read-only', 'serve reads only: writes and deletes get 405, for maintenance (storage.maintenance.readonly.enabled)')
    .option('--log-level <level>', 'trace, debug, info, warn, error, fatal or silent (log.level)')
    .option('--tls-cert <file>', 'PEM certificate chain to serve HTTPS with (http.tls.certificate)')
    .option('--tls-key <file>', 'PEM private key for --tls-cert (http.tls.key)')
    .option('--tls-self-signed', 'generate (once) a private CA and a server certificate, and serve HTTPS with them (http.tls.selfsigned)')
    .option('--tls-name <name...>', 'extra DNS names or IPs for the self-signed certificate (http.tls.names)')
    .option('--auth <mode>', 'none, htpasswd (HTTP Basic) or token (Docker token auth with the built-in issuer at /auth/token)')
    .option('--htpasswd <file>', 'bcrypt htpasswd file with the users (auth.htpasswd.path or auth.token.htpasswd)')
    .option('--access <file>', 'access rules (YAML: admins, public, teams, rules); see the README (auth.access.path)')
    .addHelpText('after', `
Configuration comes from, weakest first: built-in defaults, the YAML file, REGISTRY_* environment
variables (e.g. REGISTRY_HTTP_ADDR, REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY,
REGISTRY_STORAGE_DELETE_ENABLED=true), then these flags. See the README for every key.`)
    .action(async (file: string | undefined, flags: ServeFlags) => {
      const overrides: Record<string, any> = {};
      if (flags.addr) (overrides.http ??= {}).addr = flags.addr;
      if (flags.tlsCert || flags.tlsKey) (overrides.http ??= {}).tls = { certificate: flags.tlsCert, key: flags.tlsKey };
      if (flags.tlsSelfSigned) ((overrides.http ??= {}).tls ??= {}).selfsigned = true;
      if (flags.tlsName) ((overrides.http ??= {}).tls ??= {}).names = flags.tlsName;
      if (flags.root) overrides.storage = { filesystem: { rootdirectory: flags.root } };
      if (flags.deleteEnabled) (overrides.storage ??= {}).delete = { enabled: true };
      if (flags.readOnly) (overrides.storage ??= {}).maintenance = { readonly: { enabled: true } };
      if (flags.logLevel) overrides.log = { level: flags.logLevel };
      if (flags.auth && !['none', 'htpasswd', 'token'].includes(flags.auth)) throw new UsageError(`--auth must be none, htpasswd or token, not "${flags.auth}"`);
      if (flags.auth === 'htpasswd') overrides.auth = { htpasswd: { path: flags.htpasswd } };
      if (flags.auth === 'token') overrides.auth = { token: { htpasswd: flags.htpasswd } };
      if (flags.access) (overrides.auth ??= {}).access = { path: flags.access };
      const { ConfigError, loadConfig } = await import('../server/config.js');
      let config;
      try {
        config = loadConfig({ file: flags.config ?? file, env: process.env, overrides });
      } catch (e) {
        if (e instanceof ConfigError) throw new UsageError(e.message);
        throw e;
      }
      if (flags.auth === 'none') config.auth = { ...config.auth, mode: 'none' };
      const [{ startRegistry }, { AuthSetupError }] = await Promise.all([import('../server/main.js'), import('../server/auth/index.js')]);
      let registry;
      try {
        registry = await startRegistry(config);
      } catch (e) {
        if (e instanceof AuthSetupError) throw new UsageError(e.message);
        throw e;
      }
      const stop = () => { void registry.close().then(() => process.exit(0)); };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
