import { describe, expect, it } from 'vitest';
import { HadoopConf, MAX_SUBST } from '../../../../src/hadoop/conf/configuration.js';

function conf(
  props: Record<string, string>,
  sys: Record<string, string> = {},
  env: NodeJS.ProcessEnv = {},
): HadoopConf {
  const c = new HadoopConf(sys, env);
  c.addResource(
    'site.xml',
    Object.entries(props).map(([name, value], i) => ({ name, value, line: i + 1 })),
  );
  return c;
}

describe('HadoopConf', () => {
  it('expands ${key} from other keys, nested, and records where the value came from', () => {
    const c = conf({ host: 'zk1', port: '2181', addr: '${host}:${port}', quorum: '${addr},zk2:2181' });
    expect(c.get('quorum')).toEqual({
      value: 'zk1:2181,zk2:2181',
      key: 'quorum',
      where: 'site.xml:4',
      unresolved: [],
    });
  });

  it('prefers a system property to a key, as Hadoop does; ${env.X} reads the environment with defaults', () => {
    const c = conf(
      {
        'user.name': 'fromconf',
        a: '${user.name}',
        b: '${env.ZKH}',
        c: '${env.NOPE:-dflt}',
        d: '${env.EMPTY:-x}',
        e: '${env.EMPTY-x}',
      },
      { 'user.name': 'hdfs' },
      { ZKH: 'zk9:2181', EMPTY: '' },
    );
    expect(['a', 'b', 'c', 'd', 'e'].map((k) => c.get(k)?.value)).toEqual([
      'hdfs',
      'zk9:2181',
      'dflt',
      'x',
      '',
    ]);
  });

  it('leaves an undefined variable as written and stops there, reporting it', () => {
    const c = conf({ a: '${nope}/${b}', b: 'x' });
    expect(c.get('a')).toMatchObject({ value: '${nope}/${b}', unresolved: ['nope'] });
  });

  it('fails on a key that refers to itself, naming the file, line and key', () => {
    const c = conf({ loop: 'x${loop}' });
    expect(() => c.get('loop')).toThrow(
      `site.xml:1: loop: variable substitution depth too large (over ${MAX_SUBST} substitutions`,
    );
  });

  it('reads the per-nameservice and per-NameNode overrides ZKFC honours, most specific first', () => {
    const c = conf({ k: 'all', 'k.ns1': 'ns1', 'k.ns1.nn2': 'nn2' });
    expect(c.getGeneric('k', 'ns1', 'nn2')?.value).toBe('nn2');
    expect(c.getGeneric('k', 'ns1', 'nn1')?.value).toBe('ns1');
    expect(c.getGeneric('k', 'ns2', 'nn1')?.value).toBe('all');
    expect(c.getGeneric('other', 'ns1', 'nn1')).toBeUndefined();
  });

  it('lets a later resource override an earlier one (final is ignored)', () => {
    const c = new HadoopConf({}, {});
    c.addResource('core-site.xml', [{ name: 'a', value: '1', line: 3 }]);
    c.addResource('hdfs-site.xml', [{ name: 'a', value: '2', line: 9 }]);
    expect(c.get('a')).toMatchObject({ value: '2', where: 'hdfs-site.xml:9' });
  });
});
