// commander, loaded with require(): it is CommonJS, and importing it as ESM costs start-up time
// (the ESM wrapper and export detection) on every berth command.
import { createRequire } from 'node:module';
import type * as Commander from 'commander';

const commander = createRequire(import.meta.url)('commander') as typeof Commander;

export const { Command, CommanderError, Option } = commander;
export type Command = Commander.Command;
export type CommanderError = Commander.CommanderError;
export type Option = Commander.Option;

/** A repeatable option's parser: each use adds its value to the list. */
export const collect = (v: string, prev: string[] = []): string[] => [...prev, v];
