import { describe, expect, it } from 'vitest';
import { longestOutage, type WriteOp } from '../../../bench/outage.js';

const ok = (doneMono: number): WriteOp => ({ doneMono, status: 200 });
const failed = (doneMono: number): WriteOp => ({ doneMono, status: 0 });

describe('longestOutage', () => {
  it('spans from the last accepted write before the fault to the first one after', () => {
    const ops = [ok(100), ok(120), ok(140), failed(640), ok(900), ok(920)];
    expect(longestOutage(ops, 150, 1000)).toEqual({ ms: 760, recovered: true });
  });

  it('ignores gaps that ended before the fault', () => {
    const ops = [ok(0), ok(5000), ok(5020), ok(5100), ok(5120)];
    expect(longestOutage(ops, 5030, 5130)).toEqual({ ms: 80, recovered: true });
  });

  it('counts refused writes (409) as no write', () => {
    const ops = [ok(100), { doneMono: 200, status: 409 }, ok(400)];
    expect(longestOutage(ops, 150, 450)).toEqual({ ms: 300, recovered: true });
  });

  it('is a lower bound, marked open, when the client never wrote again', () => {
    expect(longestOutage([ok(100), failed(300)], 150, 2100)).toEqual({ ms: 2000, recovered: false });
  });

  it('does not let writes after the observation end close the outage', () => {
    expect(longestOutage([ok(100), ok(3000)], 150, 1100)).toEqual({ ms: 1000, recovered: false });
  });

  it('is null when the client had no accepted write before the fault', () => {
    expect(longestOutage([failed(100), ok(300)], 150, 400)).toBeNull();
  });

  it('takes the operations in time order whatever order they were logged in', () => {
    expect(longestOutage([ok(500), ok(100), ok(130)], 140, 510)).toEqual({ ms: 370, recovered: true });
  });

  it('refuses an observation that ends before the fault', () => {
    expect(() => longestOutage([ok(1)], 10, 5)).toThrow(/ends \(5\) before the fault \(10\)/);
  });
});
