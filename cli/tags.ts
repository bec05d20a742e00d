// berth tags REPOSITORY: every tag of a repository (all pages), one per line or --json.
import type { Command } from 'commander';
import { parseImageReference } from '../oci/image-reference.js';
import { clientContext, pageSizeOption, printJson, transportOptions, type OutputFlags, type TransportFlags } from './client-options.js';

export function registerTags(program: Command): void {
  const cmd = program
    .command('tags')
    .description('list the tags of a repository')
    .argument('<repository>', 'e.g. localhost:5000/team/app (a tag or digest given is ignored)')
    .option('-n, --page-size <n>', 'tags per request (the registry may cap it)')
    .option('--json', 'print {"name","tags"} as JSON');
  transportOptions(cmd);
  cmd.action(async (repository: string, flags: TransportFlags & OutputFlags & { pageSize?: string }) => {
    const ref = parseImageReference(repository, { defaultTag: false });
    const client = (await clientContext(flags)).client(ref);
    const tags = await client.tags(pageSizeOption(flags.pageSize));
    if (flags.json) printJson({ name: `${ref.registry}/${ref.repository}`, tags });
    else if (tags.length) process.stdout.write(`${tags.join('\n')}\n`);
  });
}
