#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { VERSION } from '../version.js';
import { ExitCode } from './exit-codes.js';
import { registerAgent } from './agent.js';
import { registerCheckConfig } from './check-config.js';
import { registerFailover } from './failover.js';
import { registerHistory } from './history.js';
import { registerImportHadoop } from './import-hadoop.js';
import { registerInit } from './init.js';
import { registerPause } from './pause.js';
import { registerStatus } from './status.js';

/** The composition root: one sub-command per verb, each in its own file. */
export function buildProgram(): Command {
  const program = new Command('hafc')
    .description('HA failover controller: keeps exactly one active instance of a service, using ZooKeeper')
    .version(VERSION, '-V, --version')
    .exitOverride()
    .showHelpAfterError();
  registerAgent(program);
  registerInit(program);
  registerCheckConfig(program);
  registerStatus(program);
  registerHistory(program);
  registerFailover(program);
  registerPause(program);
  registerImportHadoop(program);
  return program;
}

async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    // Verbs report their outcome through process.exitCode (they never call process.exit).
    return typeof process.exitCode === 'number' ? process.exitCode : ExitCode.OK;
  } catch (err) {
    if (err instanceof CommanderError) {
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
