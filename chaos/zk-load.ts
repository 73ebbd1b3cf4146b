/**
 * A burst of ZooKeeper load for the chaos suite's zk-load fault: N loops, each creating a
 * sequential znode under /hafc-chaos-load, reading it back and deleting it, as fast as the
 * ensemble answers. Runs as its own process so its work never stalls the chaos runner's clock;
 * the runner ends it with SIGKILL, and it ends itself when its stdin closes (the runner died).
 *
 *   node dist/chaos/zk-load.js --connect HOST:PORT,... [--concurrency 16]
 */
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

interface Client {
  connect(): void;
  close(): void;
  on(event: string, cb: () => void): void;
  create(
    p: string,
    data: Buffer,
    acl: unknown,
    mode: number,
    cb: (err: Error | null, p: string) => void,
  ): void;
  mkdirp(p: string, cb: (err: Error | null) => void): void;
  getData(p: string, cb: (err: Error | null) => void): void;
  remove(p: string, version: number, cb: (err: Error | null) => void): void;
}
const zookeeper = createRequire(import.meta.url)('node-zookeeper-client') as {
  createClient(c: string, o: { sessionTimeout: number; retries: number }): Client;
  ACL: { OPEN_ACL_UNSAFE: unknown };
  CreateMode: { PERSISTENT_SEQUENTIAL: number };
};

const { values } = parseArgs({
  options: { connect: { type: 'string' }, concurrency: { type: 'string', default: '16' } },
});
const connect = values.connect;
const concurrency = Number(values.concurrency);
if (!connect || !Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) {
  process.stderr.write(
    `usage: zk-load --connect HOST:PORT,... [--concurrency 1..256]; got ${JSON.stringify(values)}\n`,
  );
  process.exit(2);
}
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();

const ROOT = '/hafc-chaos-load';
const client = zookeeper.createClient(connect, { sessionTimeout: 10_000, retries: 0 });
const payload = Buffer.alloc(512, 'x');
let ops = 0;

function loop(): void {
  client.create(
    `${ROOT}/n-`,
    payload,
    zookeeper.ACL.OPEN_ACL_UNSAFE,
    zookeeper.CreateMode.PERSISTENT_SEQUENTIAL,
    (err, p) => {
      ops++;
      if (err) return void setTimeout(loop, 50);
      client.getData(p, () => {
        client.remove(p, -1, () => {
          ops += 2;
          setImmediate(loop);
        });
      });
    },
  );
}

let started = false;
client.on('connected', () => {
  // The library reconnects by itself and says 'connected' again: the loops are already running.
  if (started) return;
  started = true;
  client.mkdirp(ROOT, () => {
    for (let i = 0; i < concurrency; i++) loop();
  });
});
client.connect();
setInterval(() => process.stdout.write(`${JSON.stringify({ ops })}\n`), 1000).unref();
