// berth catalog REGISTRY: every repository of a registry (all pages).
import type { Command } from 'commander';
import { normalizeRegistryHost } from '../oci/image-reference.js';
import { clientContext, pageSizeOption, printJson, transportOptions, type OutputFlags, type TransportFlags } from './client-options.js';

export function registerCatalog(program: Command): void {
  const cmd = program
    .command('catalog')
    .description('list the repositories of a registry')
    .argument('<registry>', 'registry host, e.g. localhost:5000')
    .option('-n, --page-size <n>', 'repositories per request (the registry may cap it)')
    .option('--json', 'print {"repositories"} as JSON');
  transportOptions(cmd);
  cmd.action(async (registry: string, flags: TransportFlags & OutputFlags & { pageSize?: string }) => {
    const host = normalizeRegistryHost(registry);
    const { catalog } = await import('../client/registry-client.js');
    const repos = await catalog((await clientContext(flags)).transport(host), pageSizeOption(flags.pageSize));
    if (flags.json) printJson({ registry: host, repositories: repos });
    else if (repos.length) process.stdout.write(`${repos.join('\n')}\n`);
  });
}
