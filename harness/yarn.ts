/**
 * Real YARN ResourceManagers for integration tests: an HA pair (rm1, rm2) with no elector of
 * their own, so hafc drives them. Hadoop 3.4.1's RM refuses to start with
 * yarn.resourcemanager.ha.automatic-failover.enabled=true unless its embedded or Curator elector
 * is on as well (HAUtil.verifyLeaderElection), so automatic failover is off and the RMs take
 * REQUEST_BY_USER transitions (the yarn-resourcemanager agent's default request source). From the separate YARN jar set that scripts/setup-hadoop.sh
 * caches; process hygiene (registry, exit hook, watchdog) is harness/hadoop.ts's.
 *
 * The state store is FileSystemRMStateStore on a local directory both RMs share (the new active
 * loads what the old one wrote), so no ZooKeeper is needed by the RMs themselves. Each RM gets its
 * own conf dir (yarn.resourcemanager.ha.id set in it: both listen on 127.0.0.1) and random ports.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HADOOP_VERSION, JavaDaemon, LOG4J, xmlConf } from './hadoop.js';
import { freePorts } from './zk-ensemble.js';

const KEEP_DIRS = process.env.HAFC_KEEP_HADOOP_DIRS === '1';
/** Must match the YARN set's layout number in scripts/setup-hadoop.sh. */
const YARN_CACHE_LAYOUT = 2;

export function yarnHome(): string {
  return (
    process.env.HAFC_HADOOP_YARN_HOME ??
    path.join(os.homedir(), '.cache', 'hafc', `hadoop-yarn-${HADOOP_VERSION}`)
  );
}

export function yarnAvailable(): boolean {
  return fs.existsSync(path.join(yarnHome(), `.complete-${YARN_CACHE_LAYOUT}`));
}

export type RmId = 'rm1' | 'rm2';

/** The RM's ports: each service of an RM needs its own on one host. */
const PORT_KEYS = [
  'address',
  'scheduler.address',
  'resource-tracker.address',
  'admin.address',
  'webapp.address',
];

export class ResourceManagerProc extends JavaDaemon {
  /** @internal built by YarnHaPair. */
  constructor(
    override readonly id: RmId,
    /** yarn.resourcemanager.admin.address: where HAServiceProtocol is served. */
    readonly adminPort: number,
    readonly webPort: number,
    confDir: string,
    logFile: string,
    dir: string,
    startTimeoutMs: number,
  ) {
    super(
      id,
      `ResourceManager, admin 127.0.0.1:${adminPort}`,
      'org.apache.hadoop.yarn.server.resourcemanager.ResourceManager',
      // The admin server (HAServiceProtocol) starts last; "Transitioned to standby state" is also
      // logged by an RM that failed to start and is shutting down.
      `IPC Server listener on ${adminPort}: starting`,
      confDir,
      logFile,
      dir,
      startTimeoutMs,
      yarnHome(),
    );
  }

  get adminAddress(): string {
    return `127.0.0.1:${this.adminPort}`;
  }

  get webUrl(): string {
    return `http://127.0.0.1:${this.webPort}`;
  }
}

export interface YarnPairOptions {
  /** yarn.resourcemanager.cluster-id. @default 'hafc-it' */
  clusterId?: string;
  /** yarn.resourcemanager.ha.automatic-failover.enabled (true needs an elector of the RM's own). @default false */
  automaticFailover?: boolean;
  /** Extra yarn-site.xml properties for both RMs. */
  yarnSite?: Record<string, string>;
  /** @default 120000 */
  startTimeoutMs?: number;
}

/** Two ResourceManagers in HA, both running as standby. */
export class YarnHaPair {
  private constructor(
    readonly dir: string,
    readonly rm1: ResourceManagerProc,
    readonly rm2: ResourceManagerProc,
  ) {}

  get resourceManagers(): ResourceManagerProc[] {
    return [this.rm1, this.rm2];
  }

  static async start(opts: YarnPairOptions = {}): Promise<YarnHaPair> {
    if (!yarnAvailable()) {
      throw new Error(`YARN jars not found in ${yarnHome()}; run scripts/setup-hadoop.sh`);
    }
    const startTimeoutMs = opts.startTimeoutMs ?? 120_000;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `hafc-yarn-${process.pid}-`));
    fs.mkdirSync(path.join(dir, 'logs'));
    fs.writeFileSync(path.join(dir, 'log4j.properties'), LOG4J);
    const ports = await freePorts(2 * PORT_KEYS.length);
    const portOf = (rm: RmId, key: string): number =>
      ports[(rm === 'rm1' ? 0 : PORT_KEYS.length) + PORT_KEYS.indexOf(key)]!;
    const perRm: Record<string, string> = {};
    for (const rm of ['rm1', 'rm2'] as const) {
      perRm[`yarn.resourcemanager.hostname.${rm}`] = '127.0.0.1';
      for (const key of PORT_KEYS) {
        perRm[`yarn.resourcemanager.${key}.${rm}`] = `127.0.0.1:${portOf(rm, key)}`;
      }
    }
    const site = (id: RmId): Record<string, string> => ({
      'yarn.resourcemanager.ha.enabled': 'true',
      'yarn.resourcemanager.ha.rm-ids': 'rm1,rm2',
      'yarn.resourcemanager.ha.id': id,
      'yarn.resourcemanager.cluster-id': opts.clusterId ?? 'hafc-it',
      ...perRm,
      'yarn.resourcemanager.ha.automatic-failover.enabled': String(opts.automaticFailover ?? false),
      'yarn.resourcemanager.recovery.enabled': 'true',
      'yarn.resourcemanager.store.class':
        'org.apache.hadoop.yarn.server.resourcemanager.recovery.FileSystemRMStateStore',
      'yarn.resourcemanager.fs.state-store.uri': `file://${path.join(dir, 'rm-state')}`,
      // The default CapacityScheduler wants a capacity-scheduler.xml; FIFO needs nothing.
      'yarn.resourcemanager.scheduler.class':
        'org.apache.hadoop.yarn.server.resourcemanager.scheduler.fifo.FifoScheduler',
      // No NodeManagers here: do not wait for them after a restart.
      'yarn.resourcemanager.work-preserving-recovery.scheduling-wait-ms': '0',
      ...opts.yarnSite,
    });
    const make = (id: RmId): ResourceManagerProc => {
      const confDir = path.join(dir, `conf-${id}`);
      fs.mkdirSync(confDir);
      fs.writeFileSync(
        path.join(confDir, 'core-site.xml'),
        xmlConf({ 'hadoop.tmp.dir': path.join(dir, `tmp-${id}`), 'fs.defaultFS': 'file:///' }),
      );
      fs.writeFileSync(path.join(confDir, 'yarn-site.xml'), xmlConf(site(id)));
      return new ResourceManagerProc(
        id,
        portOf(id, 'admin.address'),
        portOf(id, 'webapp.address'),
        confDir,
        path.join(dir, 'logs', `${id}.log`),
        dir,
        startTimeoutMs,
      );
    };
    const pair = new YarnHaPair(dir, make('rm1'), make('rm2'));
    try {
      await Promise.all(pair.resourceManagers.map((rm) => rm.start()));
      return pair;
    } catch (err) {
      await pair.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.resourceManagers.map((rm) => rm.kill('SIGKILL')));
    if (!KEEP_DIRS) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
