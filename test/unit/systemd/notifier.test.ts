import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/clock.js';
import { createLogger } from '../../../src/log.js';
import { Notifier, NotifyUnavailableError, systemdNotifySend } from '../../../src/systemd/notifier.js';
import { waitFor } from '../../../harness/wait.js';
import { FakeClock } from '../../support/fake-clock.js';
import { NotifyListener } from '../../support/notify-listener.js';

function logs() {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) });
  return { lines, logger };
}

/** A send the test completes by hand. */
function manualSend() {
  const calls: { fields: string[]; resolve: () => void; reject: (e: Error) => void }[] = [];
  const send = (fields: string[]) =>
    new Promise<void>((resolve, reject) => calls.push({ fields, resolve, reject }));
  return { calls, send };
}

const flush = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

describe('Notifier: one message in flight, the rest merged, never a throw', () => {
  it('what is asked for while a message is in flight goes out merged in one next message', async () => {
    const clock = new FakeClock();
    const { calls, send } = manualSend();
    const n = new Notifier({ send, clock, logger: logs().logger });
    n.notify({ READY: '1', STATUS: 'a' });
    n.notify({ WATCHDOG: '1' });
    n.notify({ STATUS: 'b' });
    n.notify({ WATCHDOG: '1' });
    expect(calls.map((c) => c.fields)).toEqual([['READY=1', 'STATUS=a']]);
    calls[0]!.resolve();
    await flush();
    expect(calls.map((c) => c.fields)).toEqual([
      ['READY=1', 'STATUS=a'],
      ['WATCHDOG=1', 'STATUS=b'],
    ]);
    calls[1]!.resolve();
    await flush();
    expect(n.counts()).toEqual({ sent: 2, failed: 0 });
  });

  it('a failed send is retried after a pause; READY survives it, newer STATUS wins, WATCHDOG is not replayed', async () => {
    const clock = new FakeClock();
    const { calls, send } = manualSend();
    const { lines, logger } = logs();
    const n = new Notifier({ send, clock, logger, retryMs: 1000 });
    n.notify({ READY: '1', STATUS: 'old', WATCHDOG: '1' });
    n.notify({ STATUS: 'new' });
    calls[0]!.reject(new Error('systemd-notify exited with code 1'));
    await flush();
    expect(lines.filter((l) => l.msg === 'could not notify systemd; retrying')).toHaveLength(1);
    await clock.advance(999);
    expect(calls).toHaveLength(1);
    await clock.advance(1);
    expect(calls[1]!.fields.sort()).toEqual(['READY=1', 'STATUS=new']);
  });

  it('a run of failures is logged once per interval, with the count of those not logged', async () => {
    const clock = new FakeClock();
    const { lines, logger } = logs();
    const n = new Notifier({
      send: () => Promise.reject(new Error('boom')),
      clock,
      logger,
      retryMs: 1000,
      failureLogIntervalMs: 10_000,
    });
    n.notify({ STATUS: 'x' });
    await flush();
    await clock.advance(25_000);
    const warned = lines.filter((l) => l.msg === 'could not notify systemd; retrying');
    expect(warned.map((l) => l.failedSinceLastReport)).toEqual([0, 9, 9]);
    expect(n.counts().failed).toBe(26);
  });

  it('a send that throws synchronously is a failure like any other', async () => {
    const clock = new FakeClock();
    const n = new Notifier({
      send: () => {
        throw new Error('sync boom');
      },
      clock,
      logger: logs().logger,
    });
    expect(() => n.notify({ WATCHDOG: '1' })).not.toThrow();
    await flush();
    expect(n.counts().failed).toBe(1);
  });

  it('a missing systemd-notify disables notifying for good, with one error line', async () => {
    const clock = new FakeClock();
    const { lines, logger } = logs();
    let sends = 0;
    const n = new Notifier({
      send: () => {
        sends++;
        return Promise.reject(new NotifyUnavailableError('systemd-notify not found on PATH'));
      },
      clock,
      logger,
    });
    n.notify({ READY: '1' });
    await flush();
    n.notify({ WATCHDOG: '1' });
    await clock.advance(5000);
    expect(sends).toBe(1);
    expect(lines.filter((l) => l.level === 'error')).toEqual([
      expect.objectContaining({ error: 'systemd-notify not found on PATH' }),
    ]);
  });

  it('close(): nothing more is sent, a pending retry is dropped', async () => {
    const clock = new FakeClock();
    let sends = 0;
    const n = new Notifier({
      send: () => {
        sends++;
        return Promise.reject(new Error('x'));
      },
      clock,
      logger: logs().logger,
    });
    n.notify({ STATUS: 'a' });
    await flush();
    n.close();
    n.notify({ STATUS: 'b' });
    await clock.advance(10_000);
    expect(sends).toBe(1);
  });
});

describe('systemdNotifySend: the real systemd-notify to a real datagram socket', () => {
  let listener: NotifyListener | null = null;
  let dir: string | null = null;
  afterEach(async () => {
    await listener?.stop();
    listener = null;
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    dir = null;
  });

  for (const kind of ['path', 'abstract'] as const) {
    it(`delivers one datagram to a ${kind} socket, attributed to this process when privileged`, async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hafc-notify-'));
      const socket = kind === 'path' ? path.join(dir, 'notify') : `@hafc-test-${process.pid}-${Date.now()}`;
      listener = await NotifyListener.start(socket);
      const send = systemdNotifySend({ socket, clock: systemClock });
      await send(['READY=1', 'STATUS=active epoch 7 health HEALTHY']);
      const l = listener;
      await waitFor('the datagram', () => l.messages().length >= 2);
      const got = l.messages();
      expect(got.map((m) => m.field)).toEqual(['READY=1', 'STATUS=active epoch 7 health HEALTHY']);
      // Root may claim its parent's pid (systemd-notify does): what NotifyAccess=main needs.
      if (process.getuid?.() === 0) expect(got[0]!.pid).toBe(process.pid);
    });
  }

  it('a missing program: NotifyUnavailableError; a failing one: its exit code and stderr', async () => {
    const send = systemdNotifySend({
      socket: '/nonexistent',
      clock: systemClock,
      command: 'no-such-notify-program',
    });
    await expect(send(['READY=1'])).rejects.toBeInstanceOf(NotifyUnavailableError);
    // The real program, to a socket nobody listens on.
    const real = systemdNotifySend({ socket: '/nonexistent/notify', clock: systemClock });
    await expect(real(['READY=1'])).rejects.toThrow(/systemd-notify exited with code \d+/);
  });

  it('a program that hangs is killed after its timeout', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hafc-notify-'));
    const hang = path.join(dir, 'hang');
    fs.writeFileSync(hang, '#!/bin/sh\nexec sleep 60\n', { mode: 0o755 });
    const send = systemdNotifySend({ socket: '/x', clock: systemClock, command: hang, timeoutMs: 300 });
    const t0 = Date.now();
    await expect(send(['WATCHDOG=1'])).rejects.toThrow(/did not finish within 300 ms/);
    expect(Date.now() - t0).toBeLessThan(3000);
  });
});
