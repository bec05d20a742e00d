// `berth network create|ls|inspect|rm|connect|disconnect`: user-defined networks (networks.ts), with docker's output.
import type { Command } from 'commander';
import { collect } from '../cli/commander.js';
import { eachArg } from './housekeeping-cli.js';
import { formatTable } from './table.js';
import { listFormat } from './cli-modules.js';


interface Output { write(s: string): unknown }

export function registerNetworkCommands(program: Command, out: Output = process.stdout): void {
  const root = (): string => process.env.BERTH_ROOT || '/var/lib/berth';
  const mods = async () => ({ ...(await import('./networks.js')), ...(await import('./network.js')) });
  // (housekeeping-cli adds prune to the same group)
  const network = (program.commands.find((c) => c.name() === 'network') ?? program.command('network')).description('manage networks: create, ls, inspect, rm, prune, connect, disconnect');

  network.command('create')
    .description('create a network: its own bridge and subnet, where containers find each other by name')
    .argument('<name>')
    .option('--subnet <cidr>', 'its IPv4 subnet (default: a free /24 of 10.67.0.0/16)')
    .action(async (name: string, f: { subnet?: string }) => {
      const m = await mods();
      out.write(`${(await m.createNetwork(root(), name, f.subnet)).id}\n`);
    });

  network.command('ls').alias('list')
    .description('list networks (the built-in bridge, host and none too)')
    .option('-q, --quiet', 'only network names')
    .option('--format <format>', 'table, table TEMPLATE, json, or a Go template; fields ID, Name, Driver, Subnet, Scope')
    .action(async (f: { quiet?: boolean; format?: string }) => {
      const m = await mods();
      const rows = [
        { id: '', name: 'bridge', driver: 'bridge', subnet: `${m.bridgeNetwork().gateway.replace(/\.1$/, '.0')}/${m.bridgeNetwork().prefixLen}` },
        { id: '', name: 'host', driver: 'host', subnet: '' },
        { id: '', name: 'none', driver: 'null', subnet: '' },
        ...(await m.listNetworks(root())).map((n) => ({ id: n.id.slice(0, 12), name: n.name, driver: 'bridge', subnet: n.subnet })),
      ];
      if (f.quiet) { out.write(rows.map((r) => `${r.name}\n`).join('')); return; }
      const table = () => formatTable([['NETWORK ID', 'NAME', 'DRIVER', 'SUBNET'], ...rows.map((r) => [r.id || '-', r.name, r.driver, r.subnet])]);
      out.write((await listFormat()).formatList(f.format, rows.map((r) => ({ ID: r.id, Name: r.name, Driver: r.driver, Subnet: r.subnet, Scope: 'local' })), { ID: 'NETWORK ID' }, table));
    });

  network.command('inspect')
    .description("networks' details as JSON, with the containers on them now")
    .argument('<networks...>')
    .option('-f, --format <template>', 'a Go template for each, e.g. \'{{range .IPAM.Config}}{{.Subnet}}{{end}}\'')
    .action(async (refs: string[], f: { format?: string }) => {
      const m = await mods();
      const res = [];
      for (const ref of refs) {
        const def = await m.findNetwork(root(), ref);
        const bridge = m.bridgeOf(def);
        const containers = Object.fromEntries((await m.members(bridge)).map((c) => [c.id, { Name: c.names[0] ?? '', IPv4Address: `${c.ip}/${bridge.prefixLen}`, Aliases: c.names.slice(2) }]));
        res.push({ Name: def.name, Id: def.id, Created: def.created, Driver: 'bridge', Options: { 'com.docker.network.bridge.name': bridge.name }, IPAM: { Config: [{ Subnet: def.subnet, Gateway: bridge.gateway }] }, Containers: containers });
      }
      out.write(f.format !== undefined ? (await listFormat()).formatEach(f.format, res) : `${JSON.stringify(res, null, 2)}\n`);
    });

  network.command('connect')
    .description("connect a container to one more network (kept for its later starts; a running one gets an interface at once)")
    .argument('<network>')
    .argument('<container>')
    .option('--alias <name>', 'another name the container has on that network (repeatable)', collect)
    .action(async (ref: string, container: string, f: { alias?: string[] }) => {
      const { findContainer } = await import('./containers.js');
      const { connectContainer } = await import('./network-connect.js');
      await connectContainer(root(), await findContainer(root(), container), ref, f.alias ?? []);
    });

  network.command('disconnect')
    .description('disconnect a container from a network it was connected to with network connect')
    .argument('<network>')
    .argument('<container>')
    .option('-f, --force', 'accepted for docker compatibility')
    .action(async (ref: string, container: string) => {
      const { findContainer } = await import('./containers.js');
      const { disconnectContainer } = await import('./network-connect.js');
      await disconnectContainer(root(), await findContainer(root(), container), ref);
    });

  network.command('rm').alias('remove')
    .description('remove networks no running container is on (their bridge and rules go too)')
    .argument('<networks...>')
    .action(async (refs: string[]) => {
      const m = await mods();
      await eachArg(refs, async (ref) => {
        await m.removeNetwork(root(), await m.findNetwork(root(), ref));
        out.write(`${ref}\n`);
      });
    });
}
