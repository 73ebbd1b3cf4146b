/**
 * dfs.ha.fencing.methods -> hafc's fencing.methods. ZKFC always tries a graceful fence
 * (transitionToStandby on the old active) before the configured list, so the list we write starts
 * with `graceful`. Lines are split and stripped of `#` comments as Hadoop's NodeFencer does.
 *
 * - `sshfence([[user][:port]])` -> `{ssh: {user, port, identityFile}}`. Without a user ZKFC logs
 *   in as the user it runs as, which we cannot know here; hafc's default (root) is then used and
 *   reported.
 * - `shell(cmd)` -> `{shell: [bash, -e, -c, cmd]}`: ZKFC runs the command with `bash -e -c`, and so
 *   does the written config. ZKFC's target_* names are rewritten to hafc's HAFC_TARGET_*; the ones
 *   hafc has no variable for, but whose value is fixed per config file (the nameservice, and the
 *   source_* of this NameNode), are written in as literals; the Hadoop configuration that ZKFC also
 *   exports (dots as underscores) is not exported by hafc, and a command that reads it is reported.
 * - Anything else (powershell, a custom Java class) has no equivalent and is reported.
 */
export type FenceMethod =
  'graceful' | { ssh: { user?: string; port?: number; identityFile?: string } } | { shell: string[] };

export interface FencingContext {
  /** The Hadoop nameservice (target_nameserviceid / source_nameserviceid). */
  nameservice: string;
  /** This NameNode: the fencing side (source_*). */
  source: { host: string; port: number; nodeId: string };
  /** Whether hafc's node ids are the Hadoop NameNode ids (else target_namenodeid cannot be mapped). */
  idsPreserved: boolean;
  identityFiles: string[];
  /** The Hadoop keys, to recognise $dfs_... as an exported configuration variable. */
  confKeys: readonly string[];
}

export interface FencingResult {
  methods: FenceMethod[];
  /** Why something was not mapped, or mapped with a change, one sentence each. */
  notes: string[];
  /** The config is unusable: say what and stop. */
  errors: string[];
}

const CLASS_WITH_ARG = /^([a-zA-Z0-9.$]+)\((.+?)\)$/s;
const CLASS_ONLY = /^([a-zA-Z0-9.$]+)$/;
const SAFE_LITERAL = /^[A-Za-z0-9._:-]+$/;

/** Our names for ZKFC's target_* variables (hafc also sets target_host/port/address itself). */
const TARGET_VARS: Record<string, string> = {
  target_host: 'HAFC_TARGET_HOST',
  target_port: 'HAFC_TARGET_PORT',
  target_address: 'HAFC_TARGET_ADDRESS',
  target_namenodeid: 'HAFC_TARGET_ID',
};

function literals(ctx: FencingContext): Record<string, string> {
  const { host, port, nodeId } = ctx.source;
  return {
    target_nameserviceid: ctx.nameservice,
    source_nameserviceid: ctx.nameservice,
    source_host: host,
    source_port: String(port),
    source_address: `${host}:${port}`,
    source_namenodeid: nodeId,
  };
}

/** Rewrites `$name` and `${name}` for every name in `map`; other text is left exactly as it is. */
function rewriteVars(cmd: string, replace: (name: string) => string | undefined): string {
  return cmd.replace(/\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g, (whole, a, b) => {
    const name = (a ?? b) as string;
    return replace(name) ?? whole;
  });
}

function shellMethod(cmd: string, ctx: FencingContext, notes: string[]): FenceMethod {
  const lits = literals(ctx);
  const exported = new Set(ctx.confKeys.map((k) => k.replace(/\./g, '_')));
  const confVars = new Set<string>();
  const unsafe = new Set<string>();
  const rewritten = rewriteVars(cmd, (name) => {
    if (name === 'target_namenodeid' && !ctx.idsPreserved) {
      notes.push(
        `shell(${cmd}): $target_namenodeid became $HAFC_TARGET_ID, which is hafc's node id; the NameNode ids had to be changed to be valid hafc node ids, so it is not the Hadoop NameNode id`,
      );
    }
    const ours = TARGET_VARS[name];
    if (ours !== undefined) return name.startsWith('target_') ? `$${ours}` : undefined;
    const lit = lits[name];
    if (lit !== undefined) {
      if (SAFE_LITERAL.test(lit)) return lit;
      unsafe.add(name);
    }
    if (exported.has(name)) confVars.add(name);
    return undefined;
  });
  for (const v of unsafe) {
    notes.push(
      `shell(${cmd}): $${v} is left as written: its value ${JSON.stringify(lits[v])} is not a plain word to write into the command, and hafc does not set it`,
    );
  }
  notes.push(
    `shell(${cmd}): hafc gives the command HAFC_TARGET_*, HAFC_CLUSTER, HAFC_NODE_ID and target_host, target_port, target_address; a script it runs that reads target_nameserviceid, target_namenodeid, source_* or the Hadoop configuration from its environment must be changed`,
  );
  for (const v of confVars) {
    notes.push(
      `shell(${cmd}): $${v} is the Hadoop configuration key ${v.replace(/_/g, '.')} that ZKFC exports to the command; hafc does not export the Hadoop configuration: set it in the command or script`,
    );
  }
  return { shell: ['bash', '-e', '-c', rewritten] };
}

function sshMethod(
  arg: string | undefined,
  ctx: FencingContext,
  notes: string[],
  errors: string[],
): FenceMethod {
  const ssh: { user?: string; port?: number; identityFile?: string } = {};
  const spec = (arg ?? '').trim();
  if (spec !== '') {
    const m = /^([^:]*)(?::(.*))?$/.exec(spec) as RegExpExecArray;
    const user = (m[1] ?? '').trim();
    if (user !== '') ssh.user = user;
    if (m[2] !== undefined) {
      const port = Number(m[2].trim());
      if (!/^\d+$/.test(m[2].trim()) || port < 1 || port > 65535) {
        errors.push(`sshfence(${spec}): the port ${JSON.stringify(m[2])} is not a port number (1 to 65535)`);
      } else ssh.port = port;
    }
  }
  if (ssh.user === undefined) {
    notes.push(
      `sshfence${arg === undefined ? '' : `(${arg})`}: no user given; ZKFC logs in as the user it runs as, which this import cannot know, so hafc's default user root is used: set fencing.methods[].ssh.user if that is wrong`,
    );
  }
  const [first, ...rest] = ctx.identityFiles;
  if (first !== undefined) ssh.identityFile = first;
  if (rest.length > 0) {
    notes.push(
      `dfs.ha.fencing.ssh.private-key-files: hafc's ssh fencing takes one identity file; using ${first}, not ${rest.join(', ')}`,
    );
  }
  return { ssh };
}

/** Translates the value of dfs.ha.fencing.methods (undefined: the key is not set). */
export function translateFencing(spec: string | undefined, ctx: FencingContext): FencingResult {
  const methods: FenceMethod[] = ['graceful'];
  const notes: string[] = [];
  const errors: string[] = [];
  if (spec === undefined) {
    notes.push(
      'dfs.ha.fencing.methods is not set (ZKFC refuses to start without it); only graceful fencing is written, which fails when the old active cannot be reached: add a STONITH-style method',
    );
    return { methods, notes, errors };
  }
  for (const rawLine of spec.split(/\s*\n\s*/)) {
    const line = rawLine.replace(/#.*$/, '').trim();
    if (line === '') continue;
    const withArg = CLASS_WITH_ARG.exec(line);
    const only = withArg ? null : CLASS_ONLY.exec(line);
    if (!withArg && !only) {
      errors.push(
        `dfs.ha.fencing.methods: cannot parse the line ${JSON.stringify(line)} (Hadoop cannot either)`,
      );
      continue;
    }
    const name = (withArg?.[1] ?? only?.[1]) as string;
    const arg = withArg?.[2];
    if (name === 'shell' || name === 'org.apache.hadoop.ha.ShellCommandFencer') {
      if (arg === undefined || arg.trim() === '')
        errors.push('dfs.ha.fencing.methods: shell without a command');
      else methods.push(shellMethod(arg, ctx, notes));
    } else if (name === 'sshfence' || name === 'org.apache.hadoop.ha.SshFenceByTcpPort') {
      methods.push(sshMethod(arg, ctx, notes, errors));
    } else if (name === 'powershell' || name === 'org.apache.hadoop.ha.PowerShellFencer') {
      notes.push(
        `dfs.ha.fencing.methods: ${line}: no equivalent, because hafc runs on Unix hosts only; left out`,
      );
    } else {
      notes.push(
        `dfs.ha.fencing.methods: ${line}: no equivalent, because it is a Java FenceMethod class and hafc runs no JVM; left out: write it as a shell command`,
      );
    }
  }
  if (methods.length === 1) {
    notes.push(
      'dfs.ha.fencing.methods: no method could be mapped; only graceful fencing is written, which fails when the old active cannot be reached',
    );
  }
  return { methods, notes, errors };
}
