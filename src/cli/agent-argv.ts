/** The agent's command line, read without a command-line library (see plainAgentConfig). */

/**
 * The config file of exactly `hafc agent -c FILE` (or --config FILE, --config=FILE): how systemd
 * starts the agent. That shape needs no command-line library; any other goes through commander,
 * which then parses (and rejects) it exactly as always.
 */
export function plainAgentConfig(argv: readonly string[]): string | undefined {
  const args = argv.slice(2);
  if (args[0] !== 'agent') return undefined;
  let file: string | undefined;
  if (args.length === 3 && (args[1] === '-c' || args[1] === '--config')) file = args[2];
  else if (args.length === 2 && args[1]!.startsWith('--config=')) file = args[1]!.slice('--config='.length);
  return file !== undefined && file !== '' && !file.startsWith('-') ? file : undefined;
}
