import { describe, expect, it } from 'vitest';
import { translateFencing, type FencingContext } from '../../../../src/hadoop/conf/fencing.js';

const ctx: FencingContext = {
  nameservice: 'ns1',
  source: { host: 'nn1.example', port: 8020, nodeId: 'nn1' },
  idsPreserved: true,
  identityFiles: [],
  confKeys: ['dfs.nameservices'],
};

describe('translateFencing', () => {
  it('puts graceful first, as ZKFC always tries transitionToStandby before its methods', () => {
    const r = translateFencing('shell(/bin/true)', ctx);
    expect(r.methods).toEqual(['graceful', { shell: ['bash', '-e', '-c', '/bin/true'] }]);
    expect(r.errors).toEqual([]);
  });

  it('maps sshfence with and without user and port, and the private key', () => {
    const r = translateFencing('sshfence\nsshfence(hdfs)\nsshfence(hdfs:2222)\nsshfence(:2200)', {
      ...ctx,
      identityFiles: ['/k1', '/k2'],
    });
    expect(r.methods.slice(1)).toEqual([
      { ssh: { identityFile: '/k1' } },
      { ssh: { user: 'hdfs', identityFile: '/k1' } },
      { ssh: { user: 'hdfs', port: 2222, identityFile: '/k1' } },
      { ssh: { port: 2200, identityFile: '/k1' } },
    ]);
    expect(r.notes.some((n) => n.includes('no user given') && n.includes('root'))).toBe(true);
    expect(r.notes.some((n) => n.includes('using /k1, not /k2'))).toBe(true);
  });

  it("rewrites ZKFC's target_* to HAFC_TARGET_*, writes fixed values in, and reports exported conf keys", () => {
    const r = translateFencing(
      "shell(fence --h $target_host --p ${target_port} --a $target_address --ns $target_nameserviceid --nn ${target_namenodeid} --me $source_address --q '$target_host' $dfs_nameservices $HOME)",
      ctx,
    );
    expect(r.methods[1]).toEqual({
      shell: [
        'bash',
        '-e',
        '-c',
        "fence --h $HAFC_TARGET_HOST --p $HAFC_TARGET_PORT --a $HAFC_TARGET_ADDRESS --ns ns1 --nn $HAFC_TARGET_ID --me nn1.example:8020 --q '$HAFC_TARGET_HOST' $dfs_nameservices $HOME",
      ],
    });
    expect(
      r.notes.some((n) => n.includes('$dfs_nameservices is the Hadoop configuration key dfs.nameservices')),
    ).toBe(true);
    expect(r.notes.some((n) => n.includes('$HOME is'))).toBe(false);
  });

  it("warns that $target_namenodeid is hafc's id when the ids had to change", () => {
    const r = translateFencing('shell(f $target_namenodeid)', { ...ctx, idsPreserved: false });
    expect(r.notes.some((n) => n.includes('not the Hadoop NameNode id'))).toBe(true);
  });

  it('strips # comments and blank lines, and reports what has no equivalent', () => {
    const r = translateFencing('\n  # first\n  org.example.Stonith(pdu)  # power\n\n  powershell(x)\n', ctx);
    expect(r.methods).toEqual(['graceful']);
    expect(r.notes.filter((n) => n.includes('no equivalent'))).toHaveLength(2);
    expect(r.notes.some((n) => n.includes('no method could be mapped'))).toBe(true);
  });

  it('reports an unset key (ZKFC would not start) and refuses what Hadoop cannot parse', () => {
    expect(translateFencing(undefined, ctx).notes[0]).toContain('dfs.ha.fencing.methods is not set');
    expect(translateFencing('shell(a) trailing', ctx).errors[0]).toContain(
      'cannot parse the line "shell(a) trailing"',
    );
    expect(translateFencing('sshfence(hdfs:99999)', ctx).errors[0]).toContain(
      'the port "99999" is not a port number',
    );
  });
});
