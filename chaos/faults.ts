/**
 * How each scheduled fault is done to the running cluster and undone. inject() returns the heal;
 * a fault that cannot be done in the cluster's present state (the isolatable server is not a
 * follower just now) says why and does nothing, which the report shows as skipped.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ISOLATABLE, type ChaosCluster, type ChaosNode } from './cluster.js';
import type { Fault } from './schedule.js';

export type Heal = () => Promise<void>;
export type Injected = { heal: Heal; note?: string } | { skipped: string };

function num(f: Fault, key: string): number {
  const v = f.params[key];
  if (typeof v !== 'number')
    throw new Error(`fault ${f.id} (${f.kind}): param ${key} must be a number, got ${String(v)}`);
  return v;
}

function str(f: Fault, key: string): string {
  const v = f.params[key];
  if (typeof v !== 'string')
    throw new Error(`fault ${f.id} (${f.kind}): param ${key} must be a string, got ${String(v)}`);
  return v;
}

/** Best effort: a frozen or dead service simply misses the request. */
async function setFault(n: ChaosNode, body: Record<string, boolean>): Promise<void> {
  await n.service?.request('POST', '/fault', body).catch(() => undefined);
}

export async function inject(c: ChaosCluster, f: Fault): Promise<Injected> {
  const n = f.node === null ? null : c.node(f.node);
  const need = (): ChaosNode => {
    if (!n) throw new Error(`fault ${f.id} (${f.kind}) needs a node`);
    return n;
  };
  switch (f.kind) {
    case 'agent-kill': {
      const node = need();
      await c.killAgent(node);
      return { heal: async () => c.releaseAgent(node) };
    }
    case 'agent-freeze': {
      const node = need();
      const a = node.agent;
      if (!a) return { skipped: `agent ${node.id} is not running` };
      a.freeze();
      return { heal: async () => a.thaw() };
    }
    case 'node-freeze': {
      const node = need();
      const a = node.agent;
      const s = node.service;
      a?.freeze();
      s?.freeze();
      return {
        heal: async () => {
          a?.thaw();
          s?.thaw();
        },
      };
    }
    case 'service-crash': {
      const node = need();
      await c.killService(node);
      return { heal: () => c.releaseService(node) };
    }
    case 'service-hang': {
      const node = need();
      const s = node.service;
      if (!s) return { skipped: `service ${node.id} is not running` };
      s.freeze();
      return { heal: async () => s.thaw() };
    }
    case 'hook-hang': {
      const node = need();
      const how = str(f, 'how');
      if (node.agentKind === 'shell') {
        fs.writeFileSync(node.modeFile, `${how}\n`);
        return { heal: async () => fs.writeFileSync(node.modeFile, 'normal\n') };
      }
      await setFault(node, { roleHang: true });
      return { heal: () => setFault(node, { roleHang: false }) };
    }
    case 'flapping-health': {
      const node = need();
      const period = num(f, 'periodMs');
      let healthy = true;
      let on = true;
      const flap = async (): Promise<void> => {
        while (on) {
          healthy = !healthy;
          await setFault(node, { healthy });
          await new Promise((r) => setTimeout(r, period));
        }
      };
      const loop = flap();
      return {
        heal: async () => {
          on = false;
          await loop;
          await setFault(node, { healthy: true });
        },
      };
    }
    case 'zk-leader-kill': {
      const idx = await c.zk.leaderIndex(10_000);
      const s = c.zk.servers[idx]!;
      await s.kill('SIGKILL');
      return {
        note: `killed leader ${s.name}`,
        heal: async () => {
          await s.restart();
          await c.zk.waitForQuorum(60_000);
        },
      };
    }
    case 'quorum-loss': {
      const keep = num(f, 'keep');
      const how = str(f, 'how');
      const victims = c.zk.servers.filter((s) => s.index !== keep && s.isRunning());
      for (const s of victims) {
        if (how === 'freeze') s.freeze();
        else await s.kill('SIGKILL');
      }
      return {
        note: `${how} ${victims.map((s) => s.name).join(', ')}`,
        heal: async () => {
          for (const s of victims) {
            if (how === 'freeze') s.thaw();
            else await s.restart();
          }
          await c.zk.waitForQuorum(60_000);
        },
      };
    }
    case 'follower-isolate': {
      const s = c.zk.servers[ISOLATABLE]!;
      const mode = await s.mode();
      if (mode !== 'follower') return { skipped: `${s.name} is ${String(mode)} now, not a follower` };
      c.zk.isolate(ISOLATABLE, true);
      return {
        heal: async () => {
          c.zk.isolate(ISOLATABLE, false);
          await c.zk.waitForQuorum(60_000);
        },
      };
    }
    case 'partition': {
      const ns = need().netns;
      if (!ns) throw new Error(`fault ${f.id}: node ${f.node} has no network namespace`);
      if (str(f, 'how') === 'link-down') await ns.setLinkDown(true);
      else await ns.setLoss(100);
      return { heal: () => ns.heal() };
    }
    case 'net-degrade': {
      const ns = need().netns;
      if (!ns) throw new Error(`fault ${f.id}: node ${f.node} has no network namespace`);
      if (str(f, 'how') === 'loss') {
        await ns.setLoss(num(f, 'percent'));
        return { heal: () => ns.heal() };
      }
      const d = num(f, 'delayMs');
      for (const p of c.nsProxies) p.setDelay(d);
      return {
        heal: async () => {
          for (const p of c.nsProxies) p.setDelay(0);
        },
      };
    }
    case 'zk-load': {
      const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'zk-load.js');
      const child = spawn(
        process.execPath,
        [script, '--connect', c.zk.directConnectString(), '--concurrency', String(num(f, 'concurrency'))],
        { stdio: ['pipe', 'ignore', 'ignore'] },
      );
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      return {
        heal: async () => {
          child.kill('SIGKILL');
          await exited;
        },
      };
    }
  }
}
