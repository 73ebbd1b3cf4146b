/**
 * Records what Hadoop's own client (`hdfs haadmin`, DFSHAAdmin) sends to and gets from a real
 * NameNode, through a recording TCP proxy, into test/fixtures/hadoop/haadmin-frames.json: the
 * test vectors our encoder is checked against byte for byte. Run once (again only to refresh):
 *
 *   npx vite-node test/support/capture-hadoop-frames.ts
 *
 * Each haadmin run opens one connection and makes one call, so each connection's bytes are one
 * preamble + connection context + one call, and one answer.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { HADOOP_VERSION, HadoopHaPair } from '../../harness/hadoop.js';

const OUT = path.join(import.meta.dirname, '..', 'fixtures', 'hadoop', 'haadmin-frames.json');

interface Recorded {
  up: Buffer[];
  down: Buffer[];
  closed: Promise<void>;
}

async function recordingProxy(
  targetPort: number,
): Promise<{ port: number; conns: Recorded[]; close(): void }> {
  const conns: Recorded[] = [];
  const server = net.createServer((client) => {
    const rec: Recorded = { up: [], down: [], closed: Promise.resolve() };
    const upstream = net.connect(targetPort, '127.0.0.1');
    rec.closed = new Promise((r) => client.once('close', () => r()));
    conns.push(rec);
    client.on('data', (d: Buffer) => {
      rec.up.push(d);
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      rec.down.push(d);
      client.write(d);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('error', () => {});
    upstream.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as net.AddressInfo).port, conns, close: () => server.close() };
}

const pair = await HadoopHaPair.start();
try {
  const proxy = await recordingProxy(pair.nn1.rpcPort);
  // A client conf whose nn1 is the proxy.
  const conf = path.join(pair.dir, 'conf-capture');
  fs.mkdirSync(conf);
  fs.copyFileSync(path.join(pair.clientConfDir, 'core-site.xml'), path.join(conf, 'core-site.xml'));
  fs.writeFileSync(
    path.join(conf, 'hdfs-site.xml'),
    fs
      .readFileSync(path.join(pair.clientConfDir, 'hdfs-site.xml'), 'utf8')
      .replace(pair.nn1.rpcAddress, `127.0.0.1:${proxy.port}`),
  );
  const { runHadoopTool } = await import('../../harness/hadoop.js');
  const commands: { name: string; args: string[]; input?: string }[] = [
    { name: 'getServiceStatus', args: ['-getServiceState', 'nn1'] },
    { name: 'monitorHealth', args: ['-checkHealth', 'nn1'] },
    { name: 'transitionToActive', args: ['-transitionToActive', '--forcemanual', 'nn1'], input: 'Y\n' },
    { name: 'transitionToStandby', args: ['-transitionToStandby', '--forcemanual', 'nn1'], input: 'Y\n' },
  ];
  const connections = [];
  for (const c of commands) {
    const before = proxy.conns.length;
    const r = await runHadoopTool({
      dir: pair.dir,
      confDir: conf,
      mainClass: 'org.apache.hadoop.hdfs.tools.DFSHAAdmin',
      args: c.args,
      ...(c.input ? { input: c.input } : {}),
    });
    if (r.code !== 0) throw new Error(`haadmin ${c.args.join(' ')} exited ${r.code}:\n${r.output}`);
    const mine = proxy.conns.slice(before);
    if (mine.length !== 1)
      throw new Error(`haadmin ${c.args.join(' ')} opened ${mine.length} connections, expected 1`);
    const rec = mine[0] as Recorded;
    await rec.closed;
    connections.push({
      call: c.name,
      command: `hdfs haadmin ${c.args.join(' ')}`,
      clientToServer: Buffer.concat(rec.up).toString('hex'),
      serverToClient: Buffer.concat(rec.down).toString('hex'),
    });
  }
  proxy.close();
  fs.writeFileSync(
    OUT,
    JSON.stringify(
      {
        about:
          'Bytes exchanged by Hadoop DFSHAAdmin (hdfs haadmin) and a real NameNode, recorded by ' +
          'test/support/capture-hadoop-frames.ts. One connection per command: preamble, connection ' +
          'context, one call; then the answer. The user is HADOOP_USER_NAME as harness/hadoop.ts sets it.',
        hadoopVersion: HADOOP_VERSION,
        user: process.env.HADOOP_USER_NAME ?? 'hafc',
        connections,
      },
      null,
      2,
    ) + '\n',
  );
  console.log(`wrote ${connections.length} recorded connections to ${OUT}`);
} finally {
  await pair.stop();
}
