/**
 * ZKFC's sshfence: log in to the old active's host and kill whatever listens on the service's
 * TCP port. `fuser` exits 0 when it killed something and 1 when it found nothing; on 1 we check
 * with `nc -z` that the port really is closed (ZKFC does the same), and only a clean "nothing
 * listening" counts as fenced. Unlike ZKFC, a verification that itself fails (nc missing, ssh
 * error) is a failed fence rather than a success.
 *
 * The target's host and port come from ZooKeeper and, unavoidably, end up in the ssh argv and the
 * remote command; both are validated first (validTargetHost / validTargetPort), so only a plain
 * host name or address and an integer ever get there.
 */
import type { FenceMethodConfig } from '../config/types.js';
import type { FenceTarget } from '../service/agent.js';
import { validTargetHost, validTargetPort } from './target.js';

export type SshFenceConfig = Extract<FenceMethodConfig, { kind: 'ssh' }>;

/** ZKFC's own ceiling for the ssh connect timeout. */
const MAX_CONNECT_TIMEOUT_S = 30;

/** Connect timeout in whole seconds: a third of the attempt, so the remote commands get time too. */
export function sshConnectTimeoutSeconds(timeoutMs: number): number {
  return Math.min(MAX_CONNECT_TIMEOUT_S, Math.max(1, Math.floor(timeoutMs / 3000)));
}

function sshArgv(cfg: SshFenceConfig, host: string, timeoutMs: number, remote: string): string[] {
  return [
    'ssh',
    '-p',
    String(cfg.port),
    ...(cfg.identityFile !== undefined ? ['-i', cfg.identityFile] : []),
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=no',
    '-o',
    `ConnectTimeout=${sshConnectTimeoutSeconds(timeoutMs)}`,
    `${cfg.user}@${host}`,
    remote,
  ];
}

/** The argv that kills the process listening on the target's port. */
export function sshFenceArgv(cfg: SshFenceConfig, target: FenceTarget, timeoutMs: number): string[] {
  const host = validTargetHost(target);
  const port = validTargetPort(target);
  // fuser lives in /sbin on many distributions, which a non-login ssh PATH often lacks.
  return sshArgv(cfg, host, timeoutMs, `PATH=$PATH:/sbin:/usr/sbin fuser -v -k -n tcp ${port}`);
}

/** The argv that checks nothing listens on the target's port any more (nc exit 1 = closed). */
export function sshVerifyArgv(cfg: SshFenceConfig, target: FenceTarget, timeoutMs: number): string[] {
  const host = validTargetHost(target);
  const port = validTargetPort(target);
  return sshArgv(cfg, host, timeoutMs, `nc -z ${host} ${port}`);
}
