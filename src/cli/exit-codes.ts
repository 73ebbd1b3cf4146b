/** Every verb's exit codes (docs/cli.md); 3, 4 and 6 are kept for verbs not built yet. */
export const ExitCode = {
  OK: 0,
  FAILED: 1,
  USAGE: 2,
  NOT_INITIALISED: 3,
  NO_ELIGIBLE_TARGET: 4,
  ZK_UNREACHABLE: 5,
  TIMED_OUT: 6,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];
