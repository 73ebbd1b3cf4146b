/**
 * The writing client: it finds the active as a client of the service would (asks every node's
 * service for its role and takes the one claiming active with the highest epoch), then writes to
 * it with the epoch it was given, again and again, until a write is refused or fails; then it
 * looks again. It never updates the epoch on its own, so a stale active that still took writes
 * would show up as an acknowledgement under an old epoch (the checker's stale-ack rule).
 */
import { httpRequest } from '../harness/demo-service-proc.js';
import type { ClientOp } from './checker.js';
import { mono } from './cluster.js';

export interface Target {
  node: string;
  url: string;
}

export class WritingClient {
  readonly ops: ClientOp[] = [];
  private running = true;
  private loop: Promise<void> | undefined;
  discoveries = 0;

  constructor(private readonly targets: () => Target[]) {}

  start(): void {
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  private async discover(): Promise<{ node: string; url: string; epoch: string } | null> {
    this.discoveries++;
    const answers = await Promise.all(
      this.targets().map(async (t) => {
        try {
          const r = await httpRequest(`${t.url}/role`, 'GET', undefined, {}, 300);
          const b = r.body as { role?: unknown; epoch?: unknown };
          if (
            r.status === 200 &&
            b.role === 'active' &&
            typeof b.epoch === 'string' &&
            /^\d{1,20}$/.test(b.epoch)
          ) {
            return { ...t, epoch: b.epoch };
          }
        } catch {
          // Down, frozen or cut off: not a candidate.
        }
        return null;
      }),
    );
    let best: { node: string; url: string; epoch: string } | null = null;
    for (const a of answers) if (a && (!best || BigInt(a.epoch) > BigInt(best.epoch))) best = a;
    return best;
  }

  private async run(): Promise<void> {
    while (this.running) {
      const t = await this.discover();
      if (!t) {
        await pause(50);
        continue;
      }
      while (this.running) {
        const sentMono = mono();
        let status = 0;
        try {
          const r = await httpRequest(`${t.url}/write`, 'POST', {}, { 'x-epoch': t.epoch }, 500);
          status = r.status;
        } catch {
          status = 0;
        }
        this.ops.push({ node: t.node, epoch: t.epoch, sentMono, doneMono: mono(), status });
        if (status !== 200) break;
        await pause(20);
      }
    }
  }
}

function pause(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
