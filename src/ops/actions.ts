/**
 * The operator actions as the agent's HTTP API offers them (POST /switchover, /pause, /resume):
 * the same code as the CLI verbs, on the agent's own ZooKeeper session, answered with an HTTP
 * status and one line. A switchover is only requested here (202); its outcome is in the control
 * znode, `hafc status` and `/status`.
 */
import type { ElectionStore } from '../election/store.js';
import { errorMessage } from '../errors.js';
import { OpsError, type OpsFailure } from './errors.js';
import { setPaused } from './pause.js';
import { explainCandidates, planSwitchover, requestSwitchover } from './switchover.js';

export interface ActionResult {
  status: number;
  message: string;
}

const STATUS: Record<OpsFailure, number> = {
  usage: 400,
  'no-eligible-target': 409,
  failed: 409,
  'timed-out': 504,
  unreachable: 503,
};

export interface ClusterActionsDeps {
  cluster: string;
  /** The agent's store while its session is connected, else null. */
  store: () => ElectionStore | null;
  /** Who asks, as recorded (e.g. "http:10.0.0.5 via nn1"). */
  by: string;
  /** How long a switchover request stays valid. */
  switchoverTimeoutMs: number;
}

async function guarded(
  deps: ClusterActionsDeps,
  fn: (store: ElectionStore) => Promise<ActionResult>,
): Promise<ActionResult> {
  const store = deps.store();
  if (!store)
    return {
      status: 503,
      message: 'this agent is not connected to ZooKeeper now; try another agent or later',
    };
  try {
    return await fn(store);
  } catch (err) {
    if (err instanceof OpsError) return { status: STATUS[err.kind], message: err.message };
    return { status: 503, message: `ZooKeeper request failed: ${errorMessage(err)}` };
  }
}

export function clusterActions(deps: ClusterActionsDeps) {
  return {
    switchover: (req: { to?: string; reason?: string }): Promise<ActionResult> =>
      guarded(deps, async (store) => {
        const plan = await planSwitchover(store, deps.cluster, req.to);
        if (plan.to === null) {
          return {
            status: 409,
            message: [`${plan.problem ?? 'no target'}`, ...explainCandidates(plan.candidates)].join('\n'),
          };
        }
        const r = await requestSwitchover(store, plan, {
          by: deps.by,
          timeoutMs: deps.switchoverTimeoutMs,
          ...(req.reason !== undefined ? { reason: req.reason } : {}),
        });
        return {
          status: 202,
          message: `switchover ${r.id} requested: ${r.from} -> ${r.to} (valid until ${r.expiresAt})`,
        };
      }),
    pause: (req: { reason?: string }): Promise<ActionResult> =>
      guarded(deps, async (store) => ({
        status: 200,
        message: (
          await setPaused(store, deps.cluster, true, {
            by: deps.by,
            ...(req.reason !== undefined ? { reason: req.reason } : {}),
          })
        ).message,
      })),
    resume: (req: { reason?: string }): Promise<ActionResult> =>
      guarded(deps, async (store) => ({
        status: 200,
        message: (
          await setPaused(store, deps.cluster, false, {
            by: deps.by,
            ...(req.reason !== undefined ? { reason: req.reason } : {}),
          })
        ).message,
      })),
  };
}
