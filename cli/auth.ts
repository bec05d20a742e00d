// berth auth: manage the users and refresh tokens of a registry with authentication.
import { readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import type { Command } from 'commander';
import { join } from 'node:path';
import { UsageError } from './errors.js';
import { readPassword } from './prompt.js';

const USER = /^[A-Za-z0-9._@-]{1,128}$/;

export function registerAuth(program: Command): void {
  const auth = program.command('auth').description('manage registry users (htpasswd) and refresh tokens');

  auth.command('htpasswd')
    .description('add a user to an htpasswd file, or change their password (bcrypt, as htpasswd -B writes)')
    .argument('<file>', 'htpasswd file (created when missing)')
    .argument('<user>', 'user name')
    .option('--password-stdin', 'read the password from standard input')
    .option('--delete', 'remove the user instead')
    .option('--cost <n>', 'bcrypt cost', '10')
    .action(async (file: string, user: string, flags: { passwordStdin?: boolean; delete?: boolean; cost: string }) => {
      if (!USER.test(user)) throw new UsageError(`invalid user name "${user}"`);
      const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() && !l.startsWith(`${user}:`)) : [];
      if (!flags.delete) {
        const password = await readPassword(Boolean(flags.passwordStdin), `Password for ${user}: `);
        if (!password) throw new UsageError('empty password');
        const cost = Number(flags.cost);
        if (!(cost >= 4 && cost <= 15)) throw new UsageError('--cost must be between 4 and 15');
        const { default: bcrypt } = await import('bcryptjs');
        lines.push(`${user}:${bcrypt.hashSync(password, cost).replace(/^\$2b\$/, '$2y$')}`);
      }
      const tmp = `${file}.tmp-${process.pid}`;
      writeFileSync(tmp, lines.join('\n') + '\n', { mode: 0o600 });
      renameSync(tmp, file);
      process.stderr.write(`${flags.delete ? 'removed' : 'saved'} ${user} in ${file}\n`);
    });

  auth.command('revoke')
    .description('void every refresh token issued to a user until now (takes effect immediately)')
    .argument('<user>', 'user name')
    .option('-c, --config <file>', 'the registry configuration (to find auth.token.statedirectory)')
    .option('--state-dir <dir>', 'the token state directory (auth.token.statedirectory)')
    .action(async (user: string, flags: { config?: string; stateDir?: string }) => {
      let dir = flags.stateDir;
      if (!dir) {
        const { ConfigError, loadConfig } = await import('../server/config.js');
        try {
          const c = loadConfig({ file: flags.config, env: process.env });
          dir = c.auth.token?.statedirectory ?? join(String(c.storage.options.rootdirectory ?? './data'), '_auth');
        } catch (e) {
          if (e instanceof ConfigError) throw new UsageError(e.message);
          throw e;
        }
      }
      const { Revocations } = await import('../server/auth/revocations.js');
      new Revocations(join(dir, 'revocations.json')).revoke(user);
      process.stderr.write(`revoked the refresh tokens of ${user}\n`);
    });
}
