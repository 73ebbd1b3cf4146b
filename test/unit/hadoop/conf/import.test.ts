import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../../src/config/load.js';
import { planImport, type ImportPlan } from '../../../../src/hadoop/conf/import.js';

const FIXTURES = path.resolve('test/fixtures/hadoop-conf');
const OUT = '/srv/hafc-out';
const env = {};

function plan(dir: string, extra: { nameservice?: string } = {}): ImportPlan {
  return planImport({
    confDir: path.join(FIXTURES, dir),
    outDir: OUT,
    env,
    defines: { 'user.name': 'hdfs' },
    ...extra,
  });
}

const texts = (p: ImportPlan): string[] => p.notes.map((n) => n.text);

describe('import-hadoop on a real-looking HA setup (QJM, digest auth, three fencing methods)', () => {
  const p = plan('ha');
  const byName = new Map(p.files.map((f) => [path.basename(f.path), f]));

  it('plans one config per NameNode and ResourceManager and the credentials file, each passing hafc check-config rules', () => {
    expect([...byName.keys()].sort()).toEqual([
      'hdfs-prod-nn1.yaml',
      'hdfs-prod-nn2.yaml',
      'hdfs-prod.zk-auth',
      'yarn-prod-yarn-rm1.yaml',
      'yarn-prod-yarn-rm2.yaml',
    ]);
    for (const f of p.files.filter((x) => x.path.endsWith('.yaml'))) {
      const cfg = parseConfig(f.text, f.path);
      const rm = path.basename(f.path).startsWith('yarn-');
      expect(cfg.service.agent).toBe(rm ? 'yarn-resourcemanager' : 'hdfs-namenode');
      // A ResourceManager runs with its own automatic failover off, so it takes user requests.
      if (cfg.service.agent === 'yarn-resourcemanager') expect(cfg.service.requestSource).toBe('user');
      expect(f.mode).toBe(0o644);
    }
    expect(
      texts(p).some((t) => t.startsWith('yarn.resourcemanager.ha.automatic-failover.enabled is not set')),
    ).toBe(true);
    const cred = byName.get('hdfs-prod.zk-auth')!;
    expect(cred.text).toBe('hdfs-zkfcs:s3cret-pass\n');
    expect(cred.mode).toBe(0o600);
  });

  it('maps every ZKFC key that has an hafc equivalent', () => {
    const nn1 = parse(byName.get('hdfs-prod-nn1.yaml')!.text);
    expect(nn1).toEqual({
      cluster: 'hdfs-prod',
      node: { id: 'nn1', host: 'nn1.example.com', port: 8020 },
      zookeeper: {
        // ${zk.hosts} expanded from another key
        connect: 'zk1.example.com:2181,zk2.example.com:2181,zk3.example.com:2181',
        sessionTimeoutMs: 8000,
        root: '/hadoop-ha',
        onConnectionLoss: 'hold',
        auth: { scheme: 'digest', credentialsFile: `${OUT}/hdfs-prod.zk-auth` },
      },
      health: { intervalMs: 500, timeoutMs: 1200, check: 'agent' },
      service: {
        agent: 'hdfs-namenode',
        rpcAddress: 'nn1.example.com:8020',
        requestTimeoutMs: 1200,
        transitionTimeoutMs: 60000,
        gracefulFenceTimeoutMs: 4000,
        httpUrl: 'http://nn1.example.com:9870',
      },
      fencing: {
        methods: [
          'graceful',
          { ssh: { user: 'hdfs', port: 2222, identityFile: '/home/hdfs/.ssh/id_ed25519' } },
          {
            shell: [
              'bash',
              '-e',
              '-c',
              '/usr/local/sbin/stonith --host $HAFC_TARGET_HOST --port $HAFC_TARGET_PORT --ns prod --nn $HAFC_TARGET_ID --from nn1.example.com && logger -t fence "$dfs_nameservices"',
            ],
          },
        ],
        timeoutMs: 15000,
      },
    });
  });

  it('uses the service RPC address where one is set (ZKFC talks HAServiceProtocol there)', () => {
    const nn2 = parse(byName.get('hdfs-prod-nn2.yaml')!.text);
    expect(nn2.node).toEqual({ id: 'nn2', host: 'nn2.example.com', port: 8022 });
    expect(nn2.service.rpcAddress).toBe('nn2.example.com:8022');
  });

  it('says what it could not map, and why', () => {
    const unmapped = p.notes.filter((n) => n.kind === 'unmapped').map((n) => n.text);
    for (const want of [
      'org.example.hadoop.PowerSwitchFencer(pdu1): no equivalent, because it is a Java FenceMethod class',
      'ha.health-monitor.sleep-after-disconnect.ms: no equivalent, because',
      'dfs.ha.zkfc.port: no equivalent, because',
      'dfs.ha.tail-edits.period: a NameNode setting that ZKFC does not read',
      'not /home/hdfs/.ssh/id_rsa',
      "hafc's ACL also lets the world read",
      '$dfs_nameservices is the Hadoop configuration key dfs.nameservices',
    ]) {
      expect(
        unmapped.some((t) => t.includes(want)),
        want,
      ).toBe(true);
    }
    // Mapped keys are not reported.
    expect(unmapped.some((t) => t.startsWith('ha.zookeeper.quorum'))).toBe(false);
    expect(texts(p).some((t) => t.includes(`${OUT}/hdfs-prod.zk-auth (mode 0600)`))).toBe(true);
  });
});

describe('import-hadoop: timing that hafc refuses, odd names, federation', () => {
  const a = plan('federated', { nameservice: 'Ns.A' });

  it('asks for --nameservice when there are several, and names them', () => {
    expect(() => plan('federated')).toThrow(
      'hdfs-site.xml has 2 HA nameservices (Ns.A, ns-b): choose one with --nameservice NS',
    );
    expect(() => plan('federated', { nameservice: 'ns-c' })).toThrow(
      '--nameservice "ns-c": no dfs.ha.namenodes.ns-c in hdfs-site.xml',
    );
  });

  it("turns Hadoop ids into hafc names and says so; the default RPC port is Hadoop's 8020", () => {
    const nn1 = parse(a.files.find((f) => f.path.endsWith('hdfs-ns-a-nn_1.yaml'))!.text);
    expect(nn1.cluster).toBe('hdfs-ns-a');
    expect(nn1.node).toEqual({ id: 'nn_1', host: 'a1.example', port: 8020 });
    expect(texts(a)).toContain(
      'NameNode id of Ns.A "NN_1" is written as "nn_1": hafc names are [a-z0-9][a-z0-9_-]{0,62}',
    );
  });

  it("puts back hafc's default for a Hadoop timing hafc's rules refuse, with the rule as the reason", () => {
    const nn1 = parse(a.files.find((f) => f.path.endsWith('nn_1.yaml'))!.text);
    // 45 s health RPC timeout: too long for hafc; the 30 s session survives (it is not the culprit).
    expect(nn1.health.timeoutMs).toBeUndefined();
    // As the health call's own deadline it is kept: the lease budget is judged by the agent's
    // to-standby key (transitionTimeoutMs), and the monitor's health.timeoutMs bounds the check.
    expect(nn1.service.requestTimeoutMs).toBe(45000);
    expect(nn1.zookeeper.sessionTimeoutMs).toBe(30000);
    expect(
      texts(a).some(
        (t) =>
          t.startsWith(
            'ha.health-monitor.rpc-timeout.ms = 45000 is not written as health.timeoutMs for NameNode NN_1',
          ) && t.includes('must be less than health.intervalMs x health.fall'),
      ),
    ).toBe(true);
  });

  it('demotes on ZooKeeper loss unless the edits are on QJM, and says why', () => {
    const nn1 = parse(a.files[0]!.text);
    expect(nn1.zookeeper.onConnectionLoss).toBe('demote');
    expect(texts(a).some((t) => t.includes('not qjournal://'))).toBe(true);
  });

  it('refuses a wildcard RPC address, naming file, line, key and value', () => {
    expect(() => plan('federated', { nameservice: 'ns-b' })).toThrow(
      /federated\/hdfs-site\.xml:8: dfs\.namenode\.rpc-address\.ns-b\.nn1: a wildcard address .* got "0\.0\.0\.0:8020"/,
    );
  });
});

describe('import-hadoop: broken conf dirs', () => {
  it('names the file and line of malformed XML', () => {
    expect(() => plan('broken-xml')).toThrow(
      /broken-xml\/hdfs-site\.xml:7: <\/propery> closes <property> \(line 7\)/,
    );
  });

  it('refuses a nameservice without a ZooKeeper quorum', () => {
    expect(() => plan('no-quorum')).toThrow('ha.zookeeper.quorum is not set');
  });

  it('names the file, line, key and value of a bad number', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hafc-imp-'));
    try {
      const src = path.join(FIXTURES, 'no-quorum', 'hdfs-site.xml');
      const quorum = '<property><name>ha.zookeeper.quorum</name><value>zk:2181</value></property>';
      fs.writeFileSync(
        path.join(dir, 'hdfs-site.xml'),
        fs.readFileSync(src, 'utf8').replace('<configuration>', `<configuration>\n${quorum}`),
      );
      // Line 9 of the fixture, one line lower for the inserted quorum.
      expect(() => planImport({ confDir: dir, outDir: OUT, env })).toThrow(
        /hdfs-site\.xml:10: ha\.health-monitor\.check-interval\.ms: expected a whole number of milliseconds, got "soon"/,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a directory without site files, and one that does not exist', () => {
    expect(() => planImport({ confDir: FIXTURES, outDir: OUT, env })).toThrow(
      'none of core-site.xml, hdfs-site.xml, yarn-site.xml is there',
    );
    expect(() => planImport({ confDir: '/nonexistent/conf', outDir: OUT, env })).toThrow(
      '--conf-dir "/nonexistent/conf": no such directory',
    );
  });

  it('refuses an @file indirection that cannot be read, naming the key and the file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hafc-imp-'));
    try {
      for (const f of ['core-site.xml', 'hdfs-site.xml'])
        fs.copyFileSync(path.join(FIXTURES, 'ha', f), path.join(dir, f));
      expect(() => planImport({ confDir: dir, outDir: OUT, env })).toThrow(
        /core-site\.xml:\d+: ha\.zookeeper\.auth: cannot read the file ".*zk-auth\.txt" it names with "@"/,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
