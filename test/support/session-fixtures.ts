/**
 * Shared pieces of the session-layer tests (zk-session, zk-pitfalls): a logger that keeps what
 * the session said (dumped when a test fails), a recorder of state transitions, and helpers for
 * rejections and frozen servers.
 */
import fs from 'node:fs';
import { expect } from 'vitest';
import { ZkError } from '../../src/errors.js';
import { createLogger, type Logger } from '../../src/log.js';
import type { SessionState, ZkSession } from '../../src/zk/types.js';
import { waitFor } from '../../harness/wait.js';
import type { ZkServer } from '../../harness/zk-ensemble.js';

export type LogRecord = Record<string, unknown>;

/** Log lines of the current test; HAFC_TEST_LOG=1 also prints them as they come. */
export class TestLogs {
  lines: LogRecord[] = [];

  logger(): Logger {
    return createLogger({
      level: 'debug',
      write: (line) => {
        this.lines.push(JSON.parse(line) as LogRecord);
        if (process.env.HAFC_TEST_LOG === '1') process.stderr.write(line + '\n');
      },
    });
  }

  reset(): void {
    this.lines = [];
  }

  dump(): string {
    return this.lines.map((l) => JSON.stringify(l)).join('\n');
  }
}

export interface Transition {
  state: SessionState;
  prev: SessionState;
  at: number;
}

/** Records every state change of `s` with its performance.now() time. */
export function track(s: ZkSession): Transition[] {
  const seen: Transition[] = [];
  s.on('state', (state, prev) => seen.push({ state, prev, at: performance.now() }));
  return seen;
}

/** When `seen` first entered `state`; throws naming the path taken if it never did. */
export function enteredAt(seen: Transition[], state: SessionState): number {
  const t = seen.find((x) => x.state === state);
  if (!t) throw new Error(`never entered ${state}: ${seen.map((x) => x.state).join(' -> ')}`);
  return t.at;
}

/** The ZkError `p` rejects with (fails the test if it resolves or rejects with anything else). */
export async function rejection(p: Promise<unknown>): Promise<ZkError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ZkError);
    return err as ZkError;
  }
  throw new Error('expected the promise to reject');
}

/** SIGSTOP is asynchronous: wait until the JVM is really stopped before counting on it. */
export async function freezeStopped(server: ZkServer): Promise<void> {
  server.freeze();
  const pid = server.pid();
  await waitFor(`${server.name} (pid ${pid}) to be stopped`, () => {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('T');
  });
}
