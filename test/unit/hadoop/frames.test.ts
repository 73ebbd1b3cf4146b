/**
 * Our encoder against frames recorded from Hadoop's own client (test/fixtures/hadoop, see
 * test/support/capture-hadoop-frames.ts), byte for byte. Two fields depend on the sender, not on
 * the encoding, and are read from the recording and given to our encoder: clientId (16 random
 * bytes per client) and the call id (Hadoop numbers calls per JVM, across connections: haadmin
 * -transitionToActive first asks the other NameNode, not recorded, whether it is active, so its
 * recorded call is call 1). haadmin also sends the caller context "CLI", which our client sends
 * only when configured.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  decodeServiceStatus,
  encodeStateChangeRequest,
  HA_SERVICE_PROTOCOL,
  type HaRequestSource,
} from '../../../src/hadoop/ha-service.js';
import {
  callFrame,
  connectionContextFrame,
  connectionPreamble,
  splitResponse,
} from '../../../src/hadoop/ipc/headers.js';
import { asSint32, readFields, readVarint } from '../../../src/hadoop/ipc/protobuf.js';

interface Recording {
  hadoopVersion: string;
  user: string;
  connections: { call: string; command: string; clientToServer: string; serverToClient: string }[];
}

const recording = JSON.parse(
  fs.readFileSync(path.join(import.meta.dirname, '../../fixtures/hadoop/haadmin-frames.json'), 'utf8'),
) as Recording;

/** The RpcRequestHeaderProto of the frame at `offset`, and where the next frame starts. */
function recordedHeader(bytes: Buffer, offset: number): { header: Buffer; next: number } {
  const frameLen = bytes.readUInt32BE(offset);
  const body = bytes.subarray(offset + 4, offset + 4 + frameLen);
  const len = readVarint(body, 0);
  if (!len) throw new Error('recording: no header length');
  return { header: body.subarray(len.next, len.next + Number(len.value)), next: offset + 4 + frameLen };
}

/** clientId (field 4) and callId (field 3) as the recorded call frame carries them. */
function recordedIds(bytes: Buffer): { clientId: Buffer; callId: number } {
  const context = recordedHeader(bytes, 7);
  const call = recordedHeader(bytes, context.next);
  let clientId: Buffer | undefined;
  let callId: number | undefined;
  for (const f of readFields(call.header, 'recorded call header')) {
    if (f.no === 4 && f.wire === 'len') clientId = Buffer.from(f.value);
    if (f.no === 3 && f.wire === 'varint') callId = asSint32(f.value);
  }
  if (!clientId || callId === undefined) throw new Error('recording: call header without clientId/callId');
  return { clientId, callId };
}

const requests: Record<string, Buffer> = {
  getServiceStatus: Buffer.alloc(0),
  monitorHealth: Buffer.alloc(0),
  // haadmin --forcemanual sends REQUEST_BY_USER_FORCED.
  transitionToActive: encodeStateChangeRequest('REQUEST_BY_USER_FORCED'),
  transitionToStandby: encodeStateChangeRequest('REQUEST_BY_USER_FORCED'),
};

describe(`encoder vs frames recorded from hdfs haadmin (Hadoop ${recording.hadoopVersion})`, () => {
  it('has a recording of each of the four calls', () => {
    expect(recording.connections.map((c) => c.call).sort()).toEqual(Object.keys(requests).sort());
  });

  for (const conn of recording.connections) {
    it(`${conn.command}: preamble, connection context and call are identical`, () => {
      const recorded = Buffer.from(conn.clientToServer, 'hex');
      const { clientId, callId } = recordedIds(recorded);
      const request = requests[conn.call];
      if (!request) throw new Error(`no request for ${conn.call}`);
      const ours = Buffer.concat([
        connectionPreamble(),
        connectionContextFrame(clientId, recording.user, HA_SERVICE_PROTOCOL, 'CLI'),
        callFrame({
          callId,
          clientId,
          callerContext: 'CLI',
          method: conn.call,
          protocol: HA_SERVICE_PROTOCOL,
          protocolVersion: 1,
          request,
        }),
      ]);
      expect(ours.toString('hex')).toBe(recorded.toString('hex'));
    });

    it(`${conn.command}: the server's answer decodes as SUCCESS for the recorded call`, () => {
      const { callId } = recordedIds(Buffer.from(conn.clientToServer, 'hex'));
      const answer = Buffer.from(conn.serverToClient, 'hex');
      expect(answer.readUInt32BE(0)).toBe(answer.length - 4);
      const { header, message } = splitResponse(answer.subarray(4));
      expect(header).toMatchObject({ callId, status: 'SUCCESS', serverIpcVersionNum: 9 });
      if (conn.call === 'getServiceStatus') {
        expect(decodeServiceStatus(message as Buffer)).toEqual({
          state: 'standby',
          readyToBecomeActive: true,
          notReadyReason: undefined,
        });
      } else {
        expect(message?.length).toBe(0);
      }
    });
  }

  it('REQUEST_BY_ZKFC differs from the recorded forced request only in the enum value', () => {
    const sources: HaRequestSource[] = ['REQUEST_BY_USER', 'REQUEST_BY_USER_FORCED', 'REQUEST_BY_ZKFC'];
    // reqInfo { reqSource = N }: required, so written even when N is 0.
    expect(sources.map((s) => encodeStateChangeRequest(s).toString('hex'))).toEqual([
      '0a020800',
      '0a020801',
      '0a020802',
    ]);
  });
});
