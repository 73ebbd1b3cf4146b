import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SharedResource } from '../../harness/shared-resource.js';
import { waitFor } from '../../harness/wait.js';

/** A real TCP client: one reply line per sent line, matched in order. */
class Client {
  private buf = '';
  private readonly waiting: ((line: string) => void)[] = [];
  private readonly early: string[] = [];
  private constructor(readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buf += chunk;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        const w = this.waiting.shift();
        if (w) w(line);
        else this.early.push(line);
      }
    });
  }

  static connect(port: number): Promise<Client> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => resolve(new Client(s)));
      s.once('error', reject);
    });
  }

  /** Writes raw bytes; the caller says how many reply lines to expect back. */
  raw(text: string, replies: number): Promise<string[]> {
    const got = Array.from({ length: replies }, () => this.next());
    this.socket.write(text);
    return Promise.all(got);
  }

  async send(line: string): Promise<string> {
    const [r] = await this.raw(line + '\n', 1);
    return r!;
  }

  private next(): Promise<string> {
    const ready = this.early.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  close(): void {
    this.socket.destroy();
  }
}

describe('SharedResource', () => {
  let res: SharedResource;
  const clients: Client[] = [];
  const client = async (node?: string): Promise<Client> => {
    const c = await Client.connect(res.port);
    clients.push(c);
    if (node !== undefined) expect(await c.send(`HELLO ${node}`)).toBe('OK');
    return c;
  };

  beforeEach(async () => {
    res = await SharedResource.start();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await res.close();
  });

  it('accepts a clean hand-over without violations and measures the gap', async () => {
    const a = await client('nn1');
    const b = await client('nn2');
    expect(await a.send('TAKE nn1 10')).toBe('OK');
    expect(res.holder()).toEqual({ node: 'nn1', epoch: 10n });
    expect(await a.send('WRITE nn1 10 1')).toBe('OK');
    const t = res.now();
    expect(await a.send('RELEASE nn1')).toBe('OK');
    expect(res.holder()).toBeNull();
    expect(await b.send('TAKE nn2 11')).toBe('OK');
    expect(await b.send('WRITE nn2 11 1')).toBe('OK');
    res.assertNoViolations();
    expect(res.acceptedWrites).toBe(2);
    expect(res.takes().map((e) => e.node)).toEqual(['nn1', 'nn2']);
    expect(res.takes('nn2')).toHaveLength(1);
    expect(res.history.map((e) => e.kind)).toEqual(['take', 'release', 'take']);
    const gap = res.gapAfter(t);
    expect(gap).not.toBeNull();
    expect(gap!).toBeGreaterThanOrEqual(0);
    expect(gap).toBe(res.history[2]!.at - res.history[1]!.at);
  });

  it('records two-actives when a node takes while another holds', async () => {
    const a = await client('nn1');
    const b = await client('nn2');
    await a.send('TAKE nn1 1');
    expect(await b.send('TAKE nn2 2')).toBe('OK');
    expect(res.violations).toHaveLength(1);
    expect(res.violations[0]).toMatchObject({ kind: 'two-actives', holder: 'nn1', taker: 'nn2', epoch: 2n });
    expect(res.holders().map((h) => h.node)).toEqual(['nn1', 'nn2']);
    expect(() => res.assertNoViolations()).toThrow(
      /two-actives.*nn2 took the resource with epoch 2 while nn1/,
    );
  });

  it('records stale-epoch for a TAKE not above the highest epoch ever taken', async () => {
    const a = await client('nn1');
    const b = await client('nn2');
    await a.send('TAKE nn1 7');
    await a.send('RELEASE nn1');
    await b.send('TAKE nn2 7');
    expect(res.violations.map((v) => v.kind)).toEqual(['stale-epoch']);
    expect(res.violations[0]).toMatchObject({ node: 'nn2', epoch: 7n, highest: 7n });
    await b.send('RELEASE nn2');
    await a.send('TAKE nn1 3');
    expect(res.violations.map((v) => v.kind)).toEqual(['stale-epoch', 'stale-epoch']);
    expect(() => res.assertNoViolations()).toThrow(/2 violation\(s\)[\s\S]*epoch 7[\s\S]*epoch 3/);
  });

  it('rejects a write with a stale epoch without calling it a violation', async () => {
    const a = await client('nn1');
    const b = await client('nn2');
    await a.send('TAKE nn1 4');
    await a.send('RELEASE nn1');
    await b.send('TAKE nn2 5');
    expect(await a.send('WRITE nn1 4 17')).toBe('REJECT stale epoch 4 < 5');
    expect(res.rejectedWrites).toBe(1);
    res.assertNoViolations();
  });

  it('records write-without-holding for a current-epoch write by a non-holder', async () => {
    const a = await client('nn1');
    const b = await client('nn2');
    await a.send('TAKE nn1 4');
    expect(await b.send('WRITE nn2 4 1')).toMatch(/^REJECT not holding/);
    expect(res.violations).toHaveLength(1);
    expect(res.violations[0]).toMatchObject({ kind: 'write-without-holding', node: 'nn2' });
  });

  it('releases the hold when the holder disconnects, and the gap runs from the disconnect', async () => {
    const a = await client('nn1');
    await a.send('TAKE nn1 1');
    const t = res.now();
    a.close();
    await res.waitForHolder(null, 5_000);
    expect(res.history.at(-1)).toMatchObject({
      kind: 'disconnect',
      node: 'nn1',
      note: 'released by disconnect',
    });
    expect(res.gapAfter(t)).toBeNull();
    const b = await client('nn2');
    await b.send('TAKE nn2 2');
    expect(await res.waitForHolder('nn2', 5_000)).toEqual({ node: 'nn2', epoch: 2n });
    const gap = res.gapAfter(t);
    expect(gap).toBe(res.history[2]!.at - res.history[1]!.at);
    res.assertNoViolations();
  });

  it('lets a holder whose connection dropped resume the same epoch, but not after a release', async () => {
    const a = await client('nn1');
    await a.send('TAKE nn1 9');
    a.close();
    await res.waitForHolder(null, 5_000);
    const a2 = await client('nn1');
    expect(await a2.send('TAKE nn1 9')).toBe('OK');
    expect(res.history.at(-1)).toMatchObject({ kind: 'take', note: 'resumed after reconnect' });
    res.assertNoViolations();
    await a2.send('RELEASE nn1');
    await a2.send('TAKE nn1 9');
    expect(res.violations.map((v) => v.kind)).toEqual(['stale-epoch']);
  });

  it('treats a repeated TAKE with the same epoch as one activation', async () => {
    const a = await client('nn1');
    await a.send('TAKE nn1 3');
    await a.send('TAKE nn1 3');
    expect(res.takes()).toHaveLength(1);
    expect(await a.send('TAKE nn1 4')).toBe('OK');
    expect(res.holder()).toEqual({ node: 'nn1', epoch: 4n });
    res.assertNoViolations();
  });

  it('answers garbage with ERR, counts it, and keeps serving', async () => {
    const a = await client();
    const replies = await a.raw(
      [
        '',
        'NONSENSE',
        'TAKE nn1',
        'TAKE nn1 -1',
        'TAKE nn1 18446744073709551616',
        'TAKE bad/node 1',
        'WRITE nn1 1 x',
        'HELLO nn1 extra',
        '\u0000\u00ff\ud83d\ude00',
      ].join('\n') + '\n',
      9,
    );
    for (const r of replies) expect(r).toMatch(/^ERR /);
    expect(replies[1]).toBe('ERR unknown command "NONSENSE"');
    expect(replies[2]).toBe('ERR TAKE takes 2 argument(s), got 1');
    expect(replies[4]).toBe('ERR bad epoch "18446744073709551616"');
    expect(res.badLines).toBe(9);

    const [long] = await a.raw('X'.repeat(10_000), 1);
    expect(long).toMatch(/^ERR line longer than/);
    // The tail of the over-long line is dropped; the next line is served normally.
    expect(await a.raw('tail-of-long-line\nHELLO nn1\n', 1)).toEqual(['OK']);

    expect(await a.send('TAKE nn1 1')).toBe('OK');
    expect(await a.send('TAKE nn2 2')).toBe('ERR this connection speaks for nn1, not nn2');
    const b = await client('nn2');
    expect(await b.send('RELEASE nn2')).toBe('OK');
    expect(res.holder()).toEqual({ node: 'nn1', epoch: 1n });
    res.assertNoViolations();
  });

  it('waitForHolder fails with the history in the message', async () => {
    const a = await client('nn1');
    await a.send('TAKE nn1 1');
    await expect(res.waitForHolder('nn2', 100)).rejects.toThrow(/nn2 to hold[\s\S]*take nn1 epoch 1/);
  });

  it('close is idempotent and drops clients', async () => {
    const a = await client('nn1');
    const closed = new Promise<void>((r) => a.socket.once('close', () => r()));
    await Promise.all([res.close(), res.close()]);
    await closed;
    await waitFor('socket destroyed', () => a.socket.destroyed);
  });
});
