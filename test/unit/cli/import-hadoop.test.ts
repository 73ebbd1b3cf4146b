/** hafc import-hadoop as an operator runs it (the built binary): what it writes, prints and refuses. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const bin = path.join(import.meta.dirname, '../../../dist/src/cli/entry.js');
const fixtures = path.join(import.meta.dirname, '../../fixtures/hadoop-conf');
const run = (...args: string[]) =>
  spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 20_000 });

describe('hafc import-hadoop', () => {
  let out: string;
  beforeEach(() => {
    out = fs.mkdtempSync(path.join(os.tmpdir(), 'hafc-import-cli-'));
  });
  afterEach(() => fs.rmSync(out, { recursive: true, force: true }));

  it('writes the configs and the credentials (0600), lists them on stdout and the unmapped keys on stderr', () => {
    const r = run('import-hadoop', '--conf-dir', path.join(fixtures, 'ha'), '--out', out);
    expect(r.stderr).toContain(
      'hafc import-hadoop: not mapped: dfs.ha.fencing.methods: org.example.hadoop.PowerSwitchFencer(pdu1): no equivalent',
    );
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual([
      `wrote ${out}/hdfs-prod-nn1.yaml (NameNode nn1 of nameservice prod)`,
      `wrote ${out}/hdfs-prod-nn2.yaml (NameNode nn2 of nameservice prod)`,
      `wrote ${out}/yarn-prod-yarn-rm1.yaml (ResourceManager rm1)`,
      `wrote ${out}/yarn-prod-yarn-rm2.yaml (ResourceManager rm2)`,
      `wrote ${out}/hdfs-prod.zk-auth (the ZooKeeper digest credentials)`,
    ]);
    expect(fs.statSync(path.join(out, 'hdfs-prod.zk-auth')).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(out).sort()).toEqual([
      'hdfs-prod-nn1.yaml',
      'hdfs-prod-nn2.yaml',
      'hdfs-prod.zk-auth',
      'yarn-prod-yarn-rm1.yaml',
      'yarn-prod-yarn-rm2.yaml',
    ]);
    const check = run('check-config', '--no-preflight', path.join(out, 'hdfs-prod-nn1.yaml'));
    expect(check.stderr).toBe('');
    expect(check.status).toBe(0);
  });

  it('refuses to overwrite without --force (exit 2, nothing changed), and overwrites with it', () => {
    fs.writeFileSync(path.join(out, 'hdfs-prod-nn2.yaml'), 'mine\n');
    const r = run('import-hadoop', '--conf-dir', path.join(fixtures, 'ha'), '--out', out);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(
      `refusing to overwrite ${out}/hdfs-prod-nn2.yaml: they exist; add --force to replace them`,
    );
    expect(fs.readdirSync(out)).toEqual(['hdfs-prod-nn2.yaml']);
    expect(fs.readFileSync(path.join(out, 'hdfs-prod-nn2.yaml'), 'utf8')).toBe('mine\n');
    const forced = run('import-hadoop', '--conf-dir', path.join(fixtures, 'ha'), '--out', out, '--force');
    expect(forced.status).toBe(0);
    expect(fs.readFileSync(path.join(out, 'hdfs-prod-nn2.yaml'), 'utf8')).toContain('cluster: hdfs-prod');
  });

  it('a broken conf dir: exit 2, the file, line and problem, nothing written', () => {
    const r = run('import-hadoop', '--conf-dir', path.join(fixtures, 'broken-xml'), '--out', out);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /^hafc import-hadoop: .*broken-xml\/hdfs-site\.xml:7: <\/propery> closes <property> \(line 7\)\n$/,
    );
    expect(fs.readdirSync(out)).toEqual([]);
  });

  it('usage errors: no --conf-dir, a bad -D', () => {
    const none = run('import-hadoop');
    expect(none.status).toBe(2);
    expect(none.stderr).toContain("required option '--conf-dir <dir>' not specified");
    const bad = run('import-hadoop', '--conf-dir', path.join(fixtures, 'ha'), '-D', 'novalue', '--out', out);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('-D "novalue": expected name=value');
  });

  it('-D defines a Java system property for ${...}', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hafc-import-conf-'));
    try {
      const site = fs
        .readFileSync(path.join(fixtures, 'no-quorum', 'hdfs-site.xml'), 'utf8')
        .replace('<value>soon</value>', '<value>700</value>')
        .replace(
          '<configuration>',
          '<configuration><property><name>ha.zookeeper.quorum</name><value>${zk}</value></property>',
        );
      fs.writeFileSync(path.join(dir, 'hdfs-site.xml'), site);
      const r = run('import-hadoop', '--conf-dir', dir, '--out', out, '-D', 'zk=zk7.example:2181');
      expect(r.status).toBe(0);
      expect(fs.readFileSync(path.join(out, 'hdfs-ns1-nn1.yaml'), 'utf8')).toContain(
        'connect: zk7.example:2181',
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
