import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import {
  declaredKeys,
  describeRefusals,
  planReload,
  RELOAD_RULES,
  renderReloadTable,
  withoutPassword,
} from '../../../src/config/reload.js';
import type { HafcConfig } from '../../../src/config/types.js';

const SHELL = `
cluster: ns1
node: { id: nn1, host: h1, port: 8020, priority: 10 }
zookeeper: { connect: "zk1:2181,zk2:2181", sessionTimeoutMs: 10000 }
health: { intervalMs: 1000, timeoutMs: 2000, fall: 3, rise: 2, check: agent }
service:
  agent: shell
  toActive: [/bin/promote, now]
  toStandby: /bin/demote
  check: /bin/probe
  hookTimeoutMs: 5000
fencing: { methods: [{ shell: /bin/fence }, { ssh: { user: root } }], timeoutMs: 3000 }
`;

const HTTP = `
cluster: ns1
node: { id: nn1, host: h1, port: 8020 }
zookeeper: { connect: "zk1:2181" }
service: { agent: http, url: "http://127.0.0.1:8008" }
`;

const HDFS = `
cluster: ns1
node: { id: nn1, host: h1, port: 8020 }
zookeeper: { connect: "zk1:2181", onConnectionLoss: hold }
service: { agent: hdfs-namenode, rpcAddress: "127.0.0.1:8020", httpUrl: "http://127.0.0.1:9870" }
`;

const YARN = `
cluster: rm
node: { id: rm1, host: h1, port: 8033 }
zookeeper: { connect: "zk1:2181" }
service: { agent: yarn-resourcemanager, rpcAddress: "127.0.0.1:8033", httpUrl: "http://127.0.0.1:8088" }
`;

const PG = `
cluster: ns1
node: { id: nn1, host: h1, port: 5432 }
zookeeper: { connect: "zk1:2181" }
service: { agent: postgresql, dataDir: /var/lib/postgresql/15/main, osUser: postgres, passwordFile: /etc/hafc/pg.secret, logFile: /var/log/pg.log }
`;

const REDIS = `
cluster: ns1
node: { id: r1, host: h1, port: 6379 }
zookeeper: { connect: "zk1:2181" }
service: { agent: redis, address: "127.0.0.1:6379", passwordFile: /etc/hafc/redis.secret }
`;

const parse = (text: string): HafcConfig => parseConfig(text, 'ns1.yaml', { hostname: 'here' });

/** `text` with `from` replaced by `to` (it must occur), parsed. */
function edited(text: string, from: string, to: string): HafcConfig {
  expect(text, `the base config holds ${from}`).toContain(from);
  return parse(text.replace(from, to));
}

type Tree = Record<string, unknown>;

/** A copy of `cfg` whose value at `path` is replaced by a different one of the same kind. */
function changedAt(cfg: HafcConfig, path: string): HafcConfig {
  const copy = structuredClone(cfg) as unknown as Tree;
  const keys = path.split('.');
  let at = copy;
  for (const k of keys.slice(0, -1)) {
    at[k] ??= {};
    at = at[k] as Tree;
  }
  const last = keys[keys.length - 1]!;
  const v = at[last];
  at[last] =
    typeof v === 'number'
      ? v + 1
      : typeof v === 'boolean'
        ? !v
        : typeof v === 'string'
          ? `${v}x`
          : v === undefined
            ? 'added'
            : { replaced: path };
  return copy as unknown as HafcConfig;
}

describe('planReload: the classification covers the whole declaration', () => {
  it('every declared key has a rule and every rule a declared key (classify a new key here)', () => {
    const declared = declaredKeys().map((k) => k.path);
    const unclassified = declared.filter((k) => RELOAD_RULES[k] === undefined);
    const stale = Object.keys(RELOAD_RULES).filter((k) => !declared.includes(k));
    expect(unclassified, 'keys with no reload rule in src/config/reload.ts').toEqual([]);
    expect(stale, 'reload rules for keys the declaration no longer has').toEqual([]);
    expect(declared).toEqual(expect.arrayContaining(['zookeeper.auth.credentialsFile', 'service.url']));
  });

  it('a change of any one key is planned as exactly that key, applied or refused', () => {
    const shell = parse(SHELL);
    const http = parse(HTTP);
    const hdfs = parse(HDFS);
    const yarn = parse(YARN);
    const pgc = parse(PG);
    const redis = parse(REDIS);
    const byAgent: Record<string, HafcConfig> = {
      shell,
      http,
      'hdfs-namenode': hdfs,
      'yarn-resourcemanager': yarn,
      postgresql: pgc,
      redis,
    };
    for (const k of declaredKeys()) {
      const bases = k.agents.length === 0 ? [shell, http, hdfs, yarn] : k.agents.map((a) => byAgent[a]!);
      for (const base of bases) {
        const plan = planReload(base, changedAt(base, k.path));
        const planned = [...plan.apply, ...plan.refuse.map((r) => r.key)];
        expect(planned, `${k.path} changed in a ${base.service.agent} config`).toEqual([k.path]);
        expect(plan.apply.includes(k.path), k.path).toBe(
          RELOAD_RULES[k.path]!.live && plan.refuse.length === 0,
        );
      }
    }
  });

  it('an unknown key is refused, not applied', () => {
    const base = parse(SHELL);
    const next = structuredClone(base) as unknown as Tree;
    // What a key added to schema.ts without a rule would look like to the planner.
    (next.health as Tree).jitterMs = 5;
    expect(planReload(base, next as unknown as HafcConfig).apply).toEqual([]);
  });
});

describe('planReload', () => {
  it('the same file: nothing to apply, nothing refused', () => {
    expect(planReload(parse(SHELL), parse(SHELL))).toEqual({ apply: [], refuse: [] });
  });

  it('health, hooks, priority, fencing within its start size and logging apply live', () => {
    const base = parse(SHELL);
    const next = parse(
      // 160: fastIntervalMs follows (40; at 1000 and above the 50 ms cap holds it still).
      SHELL.replace('intervalMs: 1000', 'intervalMs: 160')
        .replace('timeoutMs: 2000', 'timeoutMs: 300')
        .replace('check: agent', 'check: { tcp: "127.0.0.1:8020" }')
        .replace('priority: 10', 'priority: 99')
        .replace('[/bin/promote, now]', '[/bin/promote, later]')
        .replace('{ ssh: { user: root } }', '{ shell: /bin/fence2 }')
        .replace('timeoutMs: 3000', 'timeoutMs: 2000') + 'log: { level: debug, format: pretty }\n',
    );
    expect(planReload(base, next)).toEqual({
      apply: [
        'node.priority',
        'health.intervalMs',
        // Derived from intervalMs, so it follows it.
        'health.fastIntervalMs',
        'health.timeoutMs',
        'health.check',
        'service.toActive',
        'fencing.methods',
        'fencing.timeoutMs',
        'log.level',
        'log.format',
      ],
      refuse: [],
    });
  });

  it('restart-only keys are refused with their old and new values and why', () => {
    const base = parse(SHELL);
    const next = parse(
      SHELL.replace('zk1:2181,zk2:2181', 'zk9:2181').replace('cluster: ns1', 'cluster: ns2') +
        'election: { backoffMs: 1 }\n',
    );
    const plan = planReload(base, next);
    expect(plan.apply).toEqual([]);
    expect(plan.refuse).toEqual([
      {
        key: 'cluster',
        old: '"ns1"',
        new: '"ns2"',
        why: 'the cluster name is the path of the lock and member znodes',
      },
      {
        key: 'zookeeper.connect',
        old: '"zk1:2181,zk2:2181"',
        new: '"zk9:2181"',
        why: 'the ZooKeeper session is opened with it at start',
      },
      {
        key: 'election.backoffMs',
        old: '5000',
        new: '1',
        why: 'the elector reads it once, when it starts',
      },
    ]);
    expect(describeRefusals(plan.refuse)).toBe(
      'cluster "ns1" -> "ns2" (the cluster name is the path of the lock and member znodes); ' +
        'zookeeper.connect "zk1:2181,zk2:2181" -> "zk9:2181" (the ZooKeeper session is opened with it at start); ' +
        'election.backoffMs 5000 -> 1 (the elector reads it once, when it starts)',
    );
  });

  it('one restart-only key among live ones: the live ones are listed, the reload is refused', () => {
    const plan = planReload(
      parse(SHELL),
      edited(SHELL, 'port: 8020, priority: 10', 'port: 9000, priority: 11'),
    );
    expect(plan.apply).toEqual(['node.priority']);
    expect(plan.refuse.map((r) => `${r.key} ${r.old} -> ${r.new}`)).toEqual(['node.port 8020 -> 9000']);
  });

  it("the to-standby timeout (the lease budget's) is restart-only, for either agent", () => {
    expect(
      planReload(parse(SHELL), edited(SHELL, 'hookTimeoutMs: 5000', 'hookTimeoutMs: 4000')).refuse,
    ).toEqual([
      {
        key: 'service.hookTimeoutMs',
        old: '5000',
        new: '4000',
        why: 'it is the to-standby timeout: the lease budget was computed from it when the session opened',
      },
    ]);
    const http = planReload(parse(HTTP), edited(HTTP, '8008" }', '8008", requestTimeoutMs: 3000 }'));
    expect(http.refuse.map((r) => r.key)).toEqual(['service.requestTimeoutMs']);
  });

  it('another service agent: one refusal naming the agent, not every key of both', () => {
    const next = parse(
      SHELL.replace(/service:[\s\S]*hookTimeoutMs: 5000\n/, 'service: { agent: http, url: "http://h:1" }\n'),
    );
    expect(planReload(parse(SHELL), next).refuse.map((r) => `${r.key} ${r.old} -> ${r.new}`)).toEqual([
      'service.agent "shell" -> "http"',
    ]);
  });

  it("the http agent's URL applies live unless its port (the published control port) changes", () => {
    const base = parse(HTTP);
    expect(planReload(base, edited(HTTP, '127.0.0.1:8008', 'localhost:8008')).apply).toEqual(['service.url']);
    const moved = planReload(base, edited(HTTP, '127.0.0.1:8008', '127.0.0.1:9008'));
    expect(moved.apply).toEqual([]);
    expect(moved.refuse).toEqual([
      {
        key: 'service.url',
        old: '"http://127.0.0.1:8008"',
        new: '"http://127.0.0.1:9008"',
        why: "its port (8008 -> 9008) is the control port published for peers' graceful fencing",
      },
    ]);
  });

  it('fencing may shrink live and grow back to its start size, never past it', () => {
    const boot = parse(SHELL);
    const smaller = edited(SHELL, ', { ssh: { user: root } }', '');
    expect(planReload(boot, smaller, boot).apply).toEqual(['fencing.methods']);
    // Back to what the agent started with: allowed, measured against the start, not the last reload.
    expect(planReload(smaller, boot, boot).apply).toEqual(['fencing.methods']);
    const more = edited(SHELL, '{ ssh: { user: root } }', '{ ssh: { user: root } }, { shell: /bin/f3 }');
    const longer = edited(SHELL, 'timeoutMs: 3000 }', 'timeoutMs: 3001 }');
    for (const next of [more, longer]) {
      const plan = planReload(smaller, next, boot);
      expect(plan.apply).toEqual([]);
      expect(plan.refuse[0]!.why).toBe(
        'the election step deadline was sized at start for 2 fencing method(s) of 3000 ms; ' +
          'more methods or a longer timeout need a restart',
      );
    }
  });

  it('no secret in a refusal: commands are not shown, URLs lose their password', () => {
    const base = parse(SHELL);
    const next = edited(
      SHELL,
      '{ shell: /bin/fence }, { ssh: { user: root } }',
      '{ shell: "curl -u admin:s3cret http://pdu/off" }, { ssh: { user: root } }, { http: "http://u:s3cret@pdu/off" }',
    );
    const plan = planReload(base, next);
    expect(plan.refuse.map((r) => `${r.key} ${r.old} -> ${r.new}`)).toEqual([
      'fencing.methods [shell, ssh] -> [shell, ssh, http]',
    ]);
    expect(JSON.stringify(plan)).not.toContain('s3cret');
    expect(withoutPassword('http://u:s3cret@pdu:80/off')).toBe('"http://u:***@pdu/off"');
    expect(withoutPassword('http://pdu/off')).toBe('"http://pdu/off"');
  });
});

describe('renderReloadTable', () => {
  it('lists every declared key once, live or restart, with the agents a service key belongs to', () => {
    const table = renderReloadTable();
    const rows = table.split('\n').slice(2);
    expect(rows).toHaveLength(declaredKeys().length);
    expect(table).toContain('| `service.hookTimeoutMs` (shell) | restart |');
    expect(table).toContain('| `health.intervalMs` | live |');
    expect(table).not.toContain('not classified');
  });
});
