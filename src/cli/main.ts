#!/usr/bin/env node
import type { Command } from 'commander';
import { VERSION } from '../version.js';
import { plainAgentConfig } from './agent-argv.js';
import { ExitCode } from './exit-codes.js';

type Register = (program: Command) => void;

/**
 * The verbs, in the order help lists them, each in its own file and loaded only when needed: an
 * agent process never runs the other verbs' code (renderers, the Hadoop config import).
 */
const VERBS: readonly [string, () => Promise<Register>][] = [
  ['agent', async () => (await import('./agent.js')).registerAgent],
  ['init', async () => (await import('./init.js')).registerInit],
  ['check-config', async () => (await import('./check-config.js')).registerCheckConfig],
  ['status', async () => (await import('./status.js')).registerStatus],
  ['history', async () => (await import('./history.js')).registerHistory],
  ['failover', async () => (await import('./failover.js')).registerFailover],
  ['pause', async () => (await import('./pause.js')).registerPause],
  ['import-hadoop', async () => (await import('./import-hadoop.js')).registerImportHadoop],
];

/**
 * The composition root: one sub-command per verb. `hafc VERB ...` registers VERB alone (its
 * parsing, errors and help are its own); anything else (no verb, a typo, help, --version)
 * registers them all, so the top-level help and the suggestions for a mistyped verb list every verb.
 */
export async function buildProgram(argv: readonly string[]): Promise<Command> {
  const { Command } = await import('commander');
  const program = new Command('hafc')
    .description('HA failover controller: keeps exactly one active instance of a service, using ZooKeeper')
    .version(VERSION, '-V, --version')
    .exitOverride()
    .showHelpAfterError();
  const named = VERBS.find(([name]) => name === argv[2]);
  for (const [, load] of named ? [named] : VERBS) (await load())(program);
  return program;
}

async function main(argv: string[]): Promise<number> {
  const plain = plainAgentConfig(argv);
  const commander = plain === undefined ? await import('commander') : null;
  try {
    if (plain !== undefined) return await (await import('./agent.js')).runAgent(plain);
    await (await buildProgram(argv)).parseAsync(argv);
    // Verbs report their outcome through process.exitCode (they never call process.exit).
    return typeof process.exitCode === 'number' ? process.exitCode : ExitCode.OK;
  } catch (err) {
    if (commander && err instanceof commander.CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return ExitCode.OK;
      // `hafc help [verb]` asked for it (0); a bare `hafc` got it instead of a verb: a usage
      // error, like an unknown verb.
      if (err.code === 'commander.help') return argv.length > 2 ? ExitCode.OK : ExitCode.USAGE;
      return ExitCode.USAGE;
    }
    process.stderr.write(`hafc: ${err instanceof Error ? err.message : String(err)}\n`);
    return ExitCode.FAILED;
  }
}

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`hafc: internal error: ${String(err)}\n`);
    process.exitCode = ExitCode.FAILED;
  },
);
