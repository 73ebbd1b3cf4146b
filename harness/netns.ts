/**
 * A network namespace joined to the root namespace by a veth pair, for real network partitions of
 * one node (its agent and service run inside; `exec()` is the argv prefix that puts them there).
 *
 *   root: <veth>r 10.213.K.1/30  <->  <veth>n 10.213.K.2/30 :namespace hafc-chaos-<pid>-<run>
 *
 * Faults, each undone by heal(): `linkDown()` (ip link set down: every packet both ways is gone,
 * new connections fail with "network unreachable"), `loss(pct)` (nftables in the namespace drops
 * that share of packets at random; 100 = a silent black hole, connections hang). This kernel has
 * no sch_netem, so `tc netem` is unavailable; delay is made in user space by the caller (the
 * namespace reaches ZooKeeper through TcpProxy instances on the root side, see TcpProxy.setDelay).
 *
 * Only namespaces this module made are ever touched. Names carry the owner's pid, so
 * `removeLeftoverNamespaces()` can delete those of dead runs; every live one is also deleted by a
 * synchronous exit handler (a SIGKILLed owner leaves it for the next run's sweep).
 */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);
const PREFIX = 'hafc-chaos-';
const IP = fs.existsSync('/usr/sbin/ip') ? '/usr/sbin/ip' : 'ip';
const NFT = fs.existsSync('/usr/sbin/nft') ? '/usr/sbin/nft' : 'nft';
const TABLE = 'hafc_chaos';

/** Live namespaces of this process: name -> subnet. */
const live = new Map<string, string>();
let exitHook = false;

function deleteSync(name: string, subnet?: string): void {
  try {
    execFileSync(IP, ['netns', 'del', name], { stdio: 'ignore' });
  } catch {
    // Already gone.
  }
  if (subnet === undefined) return;
  try {
    execFileSync(IP, ['route', 'del', 'blackhole', subnet, 'metric', '4000'], { stdio: 'ignore' });
  } catch {
    // Already gone.
  }
}

function installExitHook(): void {
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    for (const [name, subnet] of live) deleteSync(name, subnet);
  });
}

async function sh(argv: string[]): Promise<string> {
  try {
    const { stdout } = await run(argv[0]!, argv.slice(1), { timeout: 10_000 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${argv.join(' ')} failed: ${(e.stderr ?? '').trim() || e.message}`);
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Deletes namespaces of this module whose owner process is gone; returns their names. */
export async function removeLeftoverNamespaces(): Promise<string[]> {
  let out = '';
  try {
    out = await sh([IP, 'netns', 'list']);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const line of out.split('\n')) {
    const name = line.trim().split(/\s+/)[0] ?? '';
    const m = new RegExp(`^${PREFIX}(\\d+)-[0-9a-f]+$`).exec(name);
    if (!m || pidAlive(Number(m[1]))) continue;
    deleteSync(name);
    removed.push(name);
  }
  // Safety routes whose link is gone (their namespace was deleted above, or by hand).
  const routes = await sh([IP, '-4', 'route', 'show', 'type', 'blackhole']).catch(() => '');
  const addrs = await sh([IP, '-4', '-o', 'addr', 'show']).catch(() => '');
  for (const m of routes.matchAll(/^blackhole (10\.213\.(\d+)\.0\/30) .*metric 4000/gm)) {
    if (!addrs.includes(`10.213.${m[2]}.1/30`)) {
      await sh([IP, 'route', 'del', 'blackhole', m[1]!, 'metric', '4000']).catch(() => undefined);
    }
  }
  return removed;
}

/** Why network namespaces cannot be used here, or null when they can (root, ip, nft present). */
export function netnsUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  for (const [bin, pkg, flag] of [
    [IP, 'iproute2', '-V'],
    [NFT, 'nftables', '--version'],
  ] as const) {
    try {
      execFileSync(bin, [flag], { stdio: 'ignore' });
    } catch {
      return `${bin} is missing (Debian package ${pkg}; scripts/setup.sh installs it)`;
    }
  }
  return null;
}

export class NetNs {
  /** Faults in force, for heal() and for reports. */
  private down = false;
  private lossPct = 0;

  private constructor(
    readonly name: string,
    /** The /30 this namespace's link uses. */
    readonly subnet: string,
    /** Root-side veth. */
    readonly rootIf: string,
    readonly nsIf: string,
    /** The root namespace's address on the link: what processes inside use to reach ours. */
    readonly rootAddr: string,
    /** The namespace's address: where its services listen. */
    readonly nsAddr: string,
  ) {}

  static async create(runId: string): Promise<NetNs> {
    if (!/^[0-9a-f]{1,8}$/.test(runId))
      throw new Error(`NetNs.create: runId must be 1-8 hex digits, got ${runId}`);
    const name = `${PREFIX}${process.pid}-${runId}`;
    const rootIf = `hc${runId}r`;
    const nsIf = `hc${runId}n`;
    // A /30 in 10.213.0.0/16 that no interface uses yet (another run may hold one).
    const used = await sh([IP, '-4', '-o', 'addr', 'show']);
    let k = -1;
    for (let i = 0; i < 256; i++) {
      const cand = (parseInt(runId, 16) + i) % 256;
      if (!used.includes(`10.213.${cand}.`)) {
        k = cand;
        break;
      }
    }
    if (k < 0) throw new Error('NetNs.create: every 10.213.K.0/30 is in use');
    const ns = new NetNs(name, `10.213.${k}.0/30`, rootIf, nsIf, `10.213.${k}.1`, `10.213.${k}.2`);
    installExitHook();
    live.set(name, ns.subnet);
    try {
      await sh([IP, 'netns', 'add', name]);
      await sh([IP, 'link', 'add', rootIf, 'type', 'veth', 'peer', 'name', nsIf]);
      await sh([IP, 'link', 'set', nsIf, 'netns', name]);
      await sh([IP, 'addr', 'add', `${ns.rootAddr}/30`, 'dev', rootIf]);
      await sh([IP, 'link', 'set', rootIf, 'up']);
      // Should the link's own route go (a link down), packets for the namespace must die here,
      // not follow the default route off this host.
      await sh([IP, 'route', 'add', 'blackhole', `10.213.${k}.0/30`, 'metric', '4000']);
      await sh([...ns.exec(), IP, 'addr', 'add', `${ns.nsAddr}/30`, 'dev', nsIf]);
      await sh([...ns.exec(), IP, 'link', 'set', nsIf, 'up']);
      await sh([...ns.exec(), IP, 'link', 'set', 'lo', 'up']);
    } catch (err) {
      await ns.destroy();
      throw err;
    }
    return ns;
  }

  /** Argv prefix that runs a command inside the namespace (ip netns exec keeps the pid: it execs). */
  exec(): string[] {
    return [IP, 'netns', 'exec', this.name];
  }

  get isDown(): boolean {
    return this.down;
  }

  get lossPercent(): number {
    return this.lossPct;
  }

  /**
   * The link goes down (on: true) or up again. The namespace's end is the one set down: the root
   * end keeps its route (marked linkdown, packets into it are lost), and the blackhole route
   * stands behind it either way.
   */
  async setLinkDown(on: boolean): Promise<void> {
    await sh([...this.exec(), IP, 'link', 'set', this.nsIf, on ? 'down' : 'up']);
    this.down = on;
  }

  /** Drops `pct` per cent of packets in and out of the namespace at random (0 = none). */
  async setLoss(pct: number): Promise<void> {
    if (!Number.isInteger(pct) || pct < 0 || pct > 100) {
      throw new Error(`NetNs.setLoss: pct must be an integer 0..100, got ${pct}`);
    }
    await sh([...this.exec(), NFT, 'delete', 'table', 'inet', TABLE]).catch(() => undefined);
    this.lossPct = 0;
    if (pct === 0) return;
    const drop = pct === 100 ? 'drop' : `numgen random mod 100 < ${pct} drop`;
    const script = [
      `add table inet ${TABLE}`,
      `add chain inet ${TABLE} in { type filter hook input priority 0 ; }`,
      `add chain inet ${TABLE} out { type filter hook output priority 0 ; }`,
      `add rule inet ${TABLE} in iifname "${this.nsIf}" ${drop}`,
      `add rule inet ${TABLE} out oifname "${this.nsIf}" ${drop}`,
    ].join(' ; ');
    await sh([...this.exec(), NFT, script]);
    this.lossPct = pct;
  }

  /** Undoes every fault: link up, no loss. */
  async heal(): Promise<void> {
    if (this.lossPct !== 0) await this.setLoss(0);
    if (this.down) await this.setLinkDown(false);
  }

  /** Deletes the namespace (its veth pair goes with it). Idempotent. */
  async destroy(): Promise<void> {
    await sh([IP, 'netns', 'del', this.name]).catch(() => undefined);
    // The root end normally dies with its peer; a half-made pair may be left otherwise.
    await sh([IP, 'link', 'del', this.rootIf]).catch(() => undefined);
    await sh([IP, 'route', 'del', 'blackhole', this.subnet, 'metric', '4000']).catch(() => undefined);
    live.delete(this.name);
  }
}
