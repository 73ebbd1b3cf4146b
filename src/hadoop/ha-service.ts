/**
 * HAServiceProtocol (org.apache.hadoop.ha.HAServiceProtocol, HAServiceProtocol.proto in Hadoop)
 * over our IPC client: what ZKFC calls on a NameNode or ResourceManager. Schema, from the
 * published protocol:
 *
 *   enum HAServiceStateProto { INITIALIZING = 0; ACTIVE = 1; STANDBY = 2; OBSERVER = 3; }
 *   enum HARequestSource { REQUEST_BY_USER = 0; REQUEST_BY_USER_FORCED = 1; REQUEST_BY_ZKFC = 2; }
 *   HAStateChangeRequestInfoProto { required HARequestSource reqSource = 1; }
 *   MonitorHealthRequestProto {} / MonitorHealthResponseProto {}
 *   TransitionToActiveRequestProto { required HAStateChangeRequestInfoProto reqInfo = 1; }
 *   TransitionToStandbyRequestProto { required HAStateChangeRequestInfoProto reqInfo = 1; }
 *   GetServiceStatusRequestProto {}
 *   GetServiceStatusResponseProto { required HAServiceStateProto state = 1;
 *     optional bool readyToBecomeActive = 2; optional string notReadyReason = 3; }
 *
 * reqSource is required even when it is REQUEST_BY_USER (0): it is always written.
 */
import { IpcClient, type CallOptions, type IpcClientOptions } from './ipc/client.js';
import { IpcProtocolError } from './ipc/errors.js';
import { asInt32, expectLen, expectVarint, ProtoWriter, readFields } from './ipc/protobuf.js';

export const HA_SERVICE_PROTOCOL = 'org.apache.hadoop.ha.HAServiceProtocol';

export type HaServiceState = 'initializing' | 'active' | 'standby' | 'observer';
const STATES: Record<number, HaServiceState> = {
  0: 'initializing',
  1: 'active',
  2: 'standby',
  3: 'observer',
};

export type HaRequestSource = 'REQUEST_BY_USER' | 'REQUEST_BY_USER_FORCED' | 'REQUEST_BY_ZKFC';
const SOURCES: Record<HaRequestSource, number> = {
  REQUEST_BY_USER: 0,
  REQUEST_BY_USER_FORCED: 1,
  REQUEST_BY_ZKFC: 2,
};

export interface HaServiceStatus {
  state: HaServiceState;
  /** Absent when the server did not say (it always does for a standby). */
  readyToBecomeActive: boolean | undefined;
  notReadyReason: string | undefined;
}

export function encodeStateChangeRequest(source: HaRequestSource): Buffer {
  const reqInfo = new ProtoWriter().enum(1, SOURCES[source]).finish();
  return new ProtoWriter().message(1, reqInfo).finish();
}

export function decodeServiceStatus(buf: Buffer): HaServiceStatus {
  const what = 'GetServiceStatusResponseProto';
  let state: HaServiceState | undefined;
  let ready: boolean | undefined;
  let reason: string | undefined;
  for (const f of readFields(buf, what)) {
    if (f.no === 1) {
      const v = asInt32(expectVarint(f, what));
      state = STATES[v];
      if (!state) throw new IpcProtocolError(`${what}: unknown HAServiceStateProto value ${v}`);
    } else if (f.no === 2) {
      ready = expectVarint(f, what) !== 0n;
    } else if (f.no === 3) {
      reason = expectLen(f, what).toString('utf8');
    }
  }
  if (state === undefined) throw new IpcProtocolError(`${what}: required field state (1) missing`);
  return { state, readyToBecomeActive: ready, notReadyReason: reason };
}

const EMPTY = Buffer.alloc(0);

/** The four HAServiceProtocol calls ZKFC makes, on one IPC connection to one daemon. */
export class HaServiceClient {
  readonly ipc: IpcClient;

  constructor(opts: Omit<IpcClientOptions, 'protocol'>) {
    this.ipc = new IpcClient({ ...opts, protocol: HA_SERVICE_PROTOCOL });
  }

  get address(): string {
    return this.ipc.address;
  }

  async getServiceStatus(opts?: CallOptions): Promise<HaServiceStatus> {
    return decodeServiceStatus(await this.ipc.call('getServiceStatus', EMPTY, opts));
  }

  /** Resolves when healthy; a sick daemon answers HealthCheckFailedException (IpcRemoteError). */
  async monitorHealth(opts?: CallOptions): Promise<void> {
    await this.ipc.call('monitorHealth', EMPTY, opts);
  }

  async transitionToActive(source: HaRequestSource, opts?: CallOptions): Promise<void> {
    await this.ipc.call('transitionToActive', encodeStateChangeRequest(source), opts);
  }

  async transitionToStandby(source: HaRequestSource, opts?: CallOptions): Promise<void> {
    await this.ipc.call('transitionToStandby', encodeStateChangeRequest(source), opts);
  }

  close(): void {
    this.ipc.close();
  }
}
