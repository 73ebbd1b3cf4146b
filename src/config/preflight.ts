/**
 * What a valid config needs from the host it runs on: the files it names exist and are readable,
 * the programs its hooks run exist and are executable. Separate from validation (which is pure
 * and host-independent) so a file can be checked anywhere, and this run where the agent runs:
 * by `hafc check-config` and at agent start, each problem naming the key and the value.
 */
import { constants } from 'node:fs';
import { access, open, stat } from 'node:fs/promises';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { escapeControls, show } from './format.js';
import type { Command, HafcConfig } from './types.js';

export interface PreflightOptions {
  /** Where programs without a slash are looked up; process.env.PATH unless given. */
  path?: string;
}

/** Why `file` cannot be used, or undefined: it is a regular file with the access `mode`. */
async function fileProblem(file: string, mode: number): Promise<string | undefined> {
  let st;
  try {
    st = await stat(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? 'does not exist' : `cannot be checked (${code ?? err})`;
  }
  if (st.isDirectory()) return 'is a directory, not a file';
  if (!st.isFile()) return 'is not a regular file';
  try {
    await access(file, mode);
  } catch {
    const uid = process.getuid?.();
    const who = uid === undefined ? 'this user' : `this user (uid ${uid})`;
    return mode === constants.X_OK ? `is not executable by ${who}` : `is not readable by ${who}`;
  }
  return undefined;
}

/** The first line of a small file, read without loading a file someone pointed at /var/log. */
async function firstLine(file: string): Promise<string> {
  const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const buf = Buffer.alloc(4096);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    return (buf.subarray(0, bytesRead).toString('utf8').split('\n')[0] ?? '').trim();
  } finally {
    await handle.close();
  }
}

// Words `sh -c` runs without looking up a program: POSIX keywords and dash's builtins.
const SHELL_WORDS = new Set(
  (
    '! { } case do done elif else esac fi for if in then until while . : [ alias bg break cd ' +
    'command continue echo eval exec exit export false fc fg getopts hash jobs kill local printf ' +
    'pwd read readonly return set shift test times trap true type ulimit umask unalias unset wait'
  ).split(' '),
);

/**
 * The program a command runs, when it can be told without running a shell: argv[0] of a list;
 * of a string (run with sh -c), its first word when that is a plain path or name.
 */
export function programOf(command: Command): string | undefined {
  if (Array.isArray(command)) return command[0];
  const word = /^\s*([^\s;&|<>()$`"'\\*?[\]{}~#]+)(?=$|[\s;&|<>()])/.exec(command)?.[1];
  if (word === undefined || word.includes('=') || SHELL_WORDS.has(word)) return undefined;
  return word;
}

async function onPath(name: string, path: string): Promise<string | undefined> {
  for (const dir of path.split(delimiter)) {
    const candidate = join(dir === '' ? '.' : dir, name);
    if ((await fileProblem(candidate, constants.X_OK)) === undefined) return candidate;
  }
  return undefined;
}

async function commandProblem(key: string, command: Command, path: string): Promise<string | undefined> {
  const program = programOf(command);
  if (program === undefined) return undefined;
  const from = Array.isArray(command) ? `argv[0] of ${show(command)}` : `first word of ${show(command)}`;
  return programProblem(key, program, from, path);
}

/** Why `program` cannot be run, naming `key` and where the program came from (`from`). */
async function programProblem(
  key: string,
  program: string,
  from: string,
  path: string,
): Promise<string | undefined> {
  if (program.includes('/')) {
    // spawn resolves a relative path against the agent's working directory ("/" under systemd).
    const problem = await fileProblem(resolve(program), constants.X_OK);
    if (problem === undefined) return undefined;
    const hint = isAbsolute(program) ? '' : '; use an absolute path, the agent runs from "/" under systemd';
    return `${key}: program ${show(program)} ${problem} (${from})${hint}`;
  }
  if ((await onPath(program, path)) !== undefined) return undefined;
  return `${key}: program ${show(program)} is not found on PATH ${show(path)} (${from}); give its absolute path or install it`;
}

/** Every command of the config with its key, in the order of the reference. */
function commands(cfg: HafcConfig): Array<[string, Command]> {
  const out: Array<[string, Command]> = [];
  if (cfg.health.check.kind === 'command') out.push(['health.check.command', cfg.health.check.command]);
  const svc = cfg.service;
  if (svc.agent === 'shell') {
    out.push(['service.toActive', svc.toActive], ['service.toStandby', svc.toStandby]);
    if (svc.state !== undefined) out.push(['service.state', svc.state]);
    if (svc.check !== undefined) out.push(['service.check', svc.check]);
  }
  cfg.fencing.methods.forEach((m, i) => {
    if (m.kind === 'shell') out.push([`fencing.methods[${i}].shell`, m.command]);
  });
  return out;
}

async function credentialsProblem(file: string): Promise<string | undefined> {
  const key = 'zookeeper.auth.credentialsFile';
  const problem = await fileProblem(file, constants.R_OK);
  if (problem !== undefined)
    return `${key}: ${show(file)} ${problem}; it must hold "user:password" on its first line`;
  const line = await firstLine(file);
  const colon = line.indexOf(':');
  if (colon > 0 && colon < line.length - 1) return undefined;
  // The line is a secret: say what is wrong with it, never what it is.
  return `${key}: ${show(file)} must hold "user:password" on its first line (got ${line.length} characters without that form)`;
}

async function tokenProblem(file: string): Promise<string | undefined> {
  const key = 'control.tokenFile';
  const problem = await fileProblem(file, constants.R_OK);
  if (problem !== undefined) return `${key}: ${show(file)} ${problem}; it must hold the bearer token`;
  if ((await firstLine(file)) === '') return `${key}: ${show(file)} is empty; it must hold the bearer token`;
  return undefined;
}

async function redisPasswordProblem(file: string): Promise<string | undefined> {
  const key = 'service.passwordFile';
  const problem = await fileProblem(file, constants.R_OK);
  if (problem !== undefined) return `${key}: ${show(file)} ${problem}; it must hold the Redis password`;
  if ((await firstLine(file)) === '')
    return `${key}: ${show(file)} has an empty first line; it must hold the Redis password`;
  return undefined;
}

/**
 * The problems the agent would hit on this host with `cfg` (a validated config), one message
 * each, `key: ...` naming the value; empty when there are none.
 */
export async function preflight(cfg: HafcConfig, options: PreflightOptions = {}): Promise<string[]> {
  const path = options.path ?? process.env.PATH ?? '';
  const checks: Array<Promise<string | undefined>> = [];
  if (cfg.zookeeper.auth !== undefined) checks.push(credentialsProblem(cfg.zookeeper.auth.credentialsFile));
  for (const [key, command] of commands(cfg)) checks.push(commandProblem(key, command, path));
  cfg.fencing.methods.forEach((m, i) => {
    if (m.kind !== 'ssh') return;
    const key = `fencing.methods[${i}].ssh`;
    checks.push(programProblem(key, 'ssh', 'ssh fencing runs it', path));
    if (m.identityFile !== undefined) {
      const file = m.identityFile;
      checks.push(
        fileProblem(file, constants.R_OK).then((p) =>
          p === undefined ? undefined : `${key}.identityFile: ${show(file)} ${p}`,
        ),
      );
    }
  });
  if (cfg.control.tokenFile !== undefined) checks.push(tokenProblem(cfg.control.tokenFile));
  if (cfg.service.agent === 'redis' && cfg.service.passwordFile !== undefined)
    checks.push(redisPasswordProblem(cfg.service.passwordFile));
  const problems = await Promise.all(checks);
  return problems.filter((p): p is string => p !== undefined).map(escapeControls);
}
