/**
 * The prom-client exporter: names, labels, state sets, scrape-time values; and the text it
 * produces passes `promtool check metrics` (the real tool, Debian's prometheus package).
 */
import { execFile } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { PromMetrics, type LiveValues } from '../../../src/metrics/prom.js';

function promtoolCheck(text: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const p = execFile('promtool', ['check', 'metrics'], { timeout: 20_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr }),
    );
    p.stdin!.end(text);
  });
}

/** The sample lines of `name` (with labels), as "name{labels} value". */
function samples(text: string, name: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
}

function make(live?: LiveValues): PromMetrics {
  const m = new PromMetrics({
    version: '1.2.3',
    cluster: 'ns1',
    node: 'nn1',
    fencingMethods: ['graceful', 'shell'],
    wallClock: () => 1_700_000_000_500,
  });
  if (live) m.observe(() => live);
  return m;
}

describe('PromMetrics', () => {
  it('starts with every state set and counter at zero, identity only in hafc_build_info', async () => {
    const text = await make().text();
    expect(samples(text, 'hafc_build_info')).toEqual([
      'hafc_build_info{version="1.2.3",node="nn1",cluster="ns1"} 1',
    ]);
    expect(samples(text, 'hafc_role')).toEqual([
      'hafc_role{role="active"} 0',
      'hafc_role{role="standby"} 0',
      'hafc_role{role="neutral"} 0',
      'hafc_role{role="init"} 1',
    ]);
    expect(samples(text, 'hafc_health_state')).toContain('hafc_health_state{state="initializing"} 1');
    expect(samples(text, 'hafc_transitions_total')).toHaveLength(6);
    expect(samples(text, 'hafc_fencing_attempts_total')).toEqual([
      'hafc_fencing_attempts_total{method="graceful",result="ok"} 0',
      'hafc_fencing_attempts_total{method="graceful",result="failed"} 0',
      'hafc_fencing_attempts_total{method="shell",result="ok"} 0',
      'hafc_fencing_attempts_total{method="shell",result="failed"} 0',
    ]);
    expect(samples(text, 'hafc_zookeeper_connection_state')).toContain(
      'hafc_zookeeper_connection_state{state="none"} 1',
    );
    for (const name of [
      'hafc_lock_acquisitions_total 0',
      'hafc_zookeeper_session_expirations_total 0',
      'hafc_cluster_paused 0',
      'hafc_last_transition_timestamp_seconds 0',
      'hafc_log_lines_dropped_total 0',
    ])
      expect(text).toContain(`\n${name}\n`);
    // No series may carry the node or cluster but the info metric.
    const withIdentity = text.split('\n').filter((l) => /\b(node|cluster)="/.test(l));
    expect(withIdentity.every((l) => l.startsWith('hafc_build_info'))).toBe(true);
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
    expect(text).toContain('nodejs_active_handles{');
    expect(text).not.toContain('nodejs_active_handles_total');
  });

  it('records events: role, health, checks, transitions, fencing, epoch, expirations, pause', async () => {
    const m = make();
    m.role('active');
    m.health('NOT_RESPONDING');
    m.healthCheck(true, 3);
    m.healthCheck(false, 250);
    m.transition('active', 'ok', 1500);
    m.fencingAttempt('graceful', 'failed', 20);
    m.fencingAttempt('shell', 'ok', 40);
    m.fencing('ok');
    m.lockAcquired();
    m.epoch(4294967299n);
    m.sessionExpired();
    m.paused(true);
    const text = await m.text();
    expect(samples(text, 'hafc_role')).toContain('hafc_role{role="active"} 1');
    expect(samples(text, 'hafc_role')).toContain('hafc_role{role="init"} 0');
    expect(samples(text, 'hafc_health_state')).toContain('hafc_health_state{state="not_responding"} 1');
    expect(samples(text, 'hafc_health_state')).toContain('hafc_health_state{state="initializing"} 0');
    expect(text).toContain('hafc_health_checks_total{result="ok"} 1');
    expect(text).toContain('hafc_health_checks_total{result="failed"} 1');
    expect(text).toContain('hafc_health_check_duration_seconds_bucket{le="0.005"} 1');
    expect(text).toContain('hafc_health_check_duration_seconds_sum 0.253');
    expect(text).toContain('hafc_transitions_total{to="active",result="ok"} 1');
    expect(text).toContain('hafc_transition_duration_seconds_sum{to="active"} 1.5');
    expect(text).toContain('hafc_fencing_attempts_total{method="graceful",result="failed"} 1');
    expect(text).toContain('hafc_fencing_attempts_total{method="shell",result="ok"} 1');
    expect(text).toContain('hafc_fencings_total{result="ok"} 1');
    expect(text).toContain('\nhafc_lock_acquisitions_total 1\n');
    expect(text).toContain('\nhafc_epoch 4294967299\n');
    expect(text).toContain('\nhafc_zookeeper_session_expirations_total 1\n');
    expect(text).toContain('\nhafc_cluster_paused 1\n');
    expect(text).toContain('\nhafc_last_transition_timestamp_seconds 1700000000.5\n');
  });

  it('reads the connection state, the lease and dropped log lines when scraped', async () => {
    const live: LiveValues = { zookeeperState: 'connected', leaseRemainingMs: 2750, droppedLogLines: 3 };
    const m = make(live);
    let text = await m.text();
    expect(samples(text, 'hafc_zookeeper_connection_state')).toContain(
      'hafc_zookeeper_connection_state{state="connected"} 1',
    );
    expect(samples(text, 'hafc_zookeeper_connection_state').filter((l) => l.endsWith(' 1'))).toHaveLength(1);
    expect(samples(text, 'hafc_lease_remaining_seconds')).toEqual(['hafc_lease_remaining_seconds 2.75']);
    expect(text).toContain('\nhafc_log_lines_dropped_total 3\n');

    Object.assign(live, { zookeeperState: 'suspended', leaseRemainingMs: null, droppedLogLines: 5 });
    text = await m.text();
    expect(samples(text, 'hafc_zookeeper_connection_state')).toContain(
      'hafc_zookeeper_connection_state{state="suspended"} 1',
    );
    // Not active: no lease sample at all (a 0 would claim an expired lease on a standby).
    expect(samples(text, 'hafc_lease_remaining_seconds')).toEqual([]);
    expect(text).toContain('# TYPE hafc_lease_remaining_seconds gauge');
    expect(text).toContain('\nhafc_log_lines_dropped_total 5\n');
  });

  it('passes promtool check metrics, before and after events', async () => {
    const m = make({ zookeeperState: 'connected', leaseRemainingMs: 1200, droppedLogLines: 0 });
    const before = await promtoolCheck(await m.text());
    expect(before, before.output).toEqual({ code: 0, output: '' });
    m.role('standby');
    m.transition('standby', 'failed', 5000);
    m.fencingAttempt('ssh', 'failed', 3000);
    const after = await promtoolCheck(await m.text());
    expect(after, after.output).toEqual({ code: 0, output: '' });
  });

  it('promtool check metrics is a real check: it fails a broken exposition', async () => {
    const r = await promtoolCheck('# TYPE hafc_bad counter\nhafc_bad{x="1"} 1\nhafc_bad{x="1"} 2\n');
    expect(r.code).not.toBe(0);
  });
});
