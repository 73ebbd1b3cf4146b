/**
 * The hook environment contract (docs/hooks.md): the variables a hook is given, and
 * nothing else. Data read from ZooKeeper reaches a hook only this way, never in a command line.
 */
import type { FenceTarget, HookContext } from '../service/agent.js';

/** The variables every hook gets. */
export function hookEnv(ctx: HookContext): Record<string, string> {
  return {
    HAFC_CLUSTER: ctx.cluster,
    HAFC_NODE_ID: ctx.nodeId,
    HAFC_ROLE: ctx.role,
    HAFC_EPOCH: ctx.epoch.toString(10),
    HAFC_REASON: ctx.reason,
  };
}

/**
 * hookEnv plus the fencing target, under our names and ZKFC's lower-case `target_*` names, so
 * existing ZKFC fencing scripts run unchanged. The target comes from ZooKeeper, which is why it
 * travels only here and never into a command line.
 */
export function fenceEnv(ctx: HookContext, target: FenceTarget): Record<string, string> {
  const port = String(target.port);
  return {
    ...hookEnv(ctx),
    HAFC_TARGET_ID: target.id,
    HAFC_TARGET_HOST: target.host,
    HAFC_TARGET_PORT: port,
    HAFC_TARGET_ADDRESS: target.address,
    HAFC_TARGET_EPOCH: target.epoch.toString(10),
    target_host: target.host,
    target_port: port,
    target_address: target.address,
  };
}
