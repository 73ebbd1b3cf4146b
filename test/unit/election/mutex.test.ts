import { describe, expect, it } from 'vitest';
import { Mutex } from '../../../src/election/mutex.js';

describe('Mutex', () => {
  it('runs tasks one at a time in FIFO order, surviving a failed task', async () => {
    const m = new Mutex();
    const events: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const a = m.run(async () => {
      events.push('a start');
      await gate;
      events.push('a end');
    });
    const b = m.run(async () => {
      events.push('b');
      throw new Error('b failed');
    });
    const c = m.run(async () => {
      events.push('c');
      return 42;
    });
    await Promise.resolve();
    expect(events).toEqual(['a start']);
    release();
    await a;
    await expect(b).rejects.toThrow('b failed');
    expect(await c).toBe(42);
    expect(events).toEqual(['a start', 'a end', 'b', 'c']);
  });
});
