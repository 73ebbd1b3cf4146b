/**
 * A real unix datagram socket standing in for systemd's NOTIFY_SOCKET (python3: Node cannot bind
 * one), recording every datagram with its sender pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../../harness/wait.js';

const SCRIPT = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  '../fixtures/systemd/notify-listener.py',
);

export interface NotifyDatagram {
  pid: number | null;
  fields: string[];
  atMs: number;
}

export class NotifyListener {
  readonly datagrams: NotifyDatagram[] = [];
  private bound = false;
  private exited: string | null = null;
  private stderr = '';

  private constructor(
    readonly socket: string,
    private readonly child: ChildProcess,
  ) {
    let buf = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line === 'bound') this.bound = true;
        else this.datagrams.push(JSON.parse(line) as NotifyDatagram);
      }
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (c: string) => (this.stderr += c));
    child.on('exit', (code, signal) => (this.exited = `exit ${code ?? signal}: ${this.stderr}`));
  }

  /** `socket`: a path, or `@name` (abstract namespace). */
  static async start(socket: string): Promise<NotifyListener> {
    const l = new NotifyListener(
      socket,
      spawn('python3', [SCRIPT, socket], { stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    await waitFor(`the notify listener on ${socket} to bind`, () => {
      if (l.exited) throw new Error(`notify listener: ${l.exited}`);
      return l.bound;
    });
    return l;
  }

  /** Every KEY=VALUE received, in order, with the datagram's sender pid (BARRIER=1 left out). */
  messages(): { pid: number | null; field: string; atMs: number }[] {
    return this.datagrams.flatMap((d) =>
      d.fields.filter((f) => f !== 'BARRIER=1').map((field) => ({ pid: d.pid, field, atMs: d.atMs })),
    );
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGKILL');
    await gone;
  }
}
