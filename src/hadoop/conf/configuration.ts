/**
 * A Hadoop Configuration as a failover controller sees it: site files layered in order (a later
 * file or a later property of the same name wins; <final> is ignored), values expanded the way
 * org.apache.hadoop.conf.Configuration expands them, and the per-nameservice / per-NameNode key
 * suffixes that ZKFC honours for its own keys.
 *
 * Expansion, as Hadoop does it: the left-most `${var}` whose name holds no `$`, `{`, `}` or space
 * is replaced; `${env.NAME}` (with `:-default` / `-default`) reads the environment; any other name
 * is looked up as a Java system property first (here: the `defines` given, plus user.name,
 * user.home and java.io.tmpdir), then as another key. An unknown name stops the expansion and
 * leaves the rest as written (Hadoop does the same); we also record it so it can be reported.
 * More than 20 substitutions in one value is an error, as in Hadoop (it catches a key that
 * refers to itself).
 */
import os from 'node:os';
import { ConfigError } from '../../errors.js';
import { escapeControls } from '../../config/format.js';
import type { XmlProperty } from './xml.js';

export const MAX_SUBST = 20;

export interface ConfEntry {
  value: string;
  /** `file:line` of the property that set it. */
  where: string;
}

export interface Lookup {
  /** The expanded value. */
  value: string;
  /** The key actually found (with a suffix when a per-nameservice/NameNode override won). */
  key: string;
  where: string;
  /** Variables left unexpanded because nothing defines them. */
  unresolved: string[];
}

const VAR = /\$\{([^}${\s]+)\}/;

export function javaSystemProperties(): Record<string, string> {
  let user = process.env.USER ?? 'unknown';
  try {
    user = os.userInfo().username;
  } catch {
    // No passwd entry for this uid: keep $USER.
  }
  return { 'user.name': user, 'user.home': os.homedir(), 'java.io.tmpdir': '/tmp' };
}

export class HadoopConf {
  private readonly entries = new Map<string, ConfEntry>();

  constructor(
    private readonly systemProps: Record<string, string> = javaSystemProperties(),
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  /** Adds one file's properties on top of what is there. */
  addResource(file: string, props: readonly XmlProperty[]): void {
    for (const p of props) this.entries.set(p.name, { value: p.value, where: `${file}:${p.line}` });
  }

  /** Every key set by the files, in no particular order. */
  keys(): string[] {
    return [...this.entries.keys()];
  }

  raw(key: string): ConfEntry | undefined {
    return this.entries.get(key);
  }

  /** The expanded value of `key`, or undefined when no file sets it. */
  get(key: string): Lookup | undefined {
    const e = this.entries.get(key);
    if (e === undefined) return undefined;
    const unresolved: string[] = [];
    return { value: this.expand(e.value, key, e.where, unresolved), key, where: e.where, unresolved };
  }

  /**
   * `key` as ZKFC reads it for one NameNode: `key.NS.NN`, then `key.NS`, then `key`
   * (NameNode.initializeGenericKeys).
   */
  getGeneric(key: string, ...suffixes: string[]): Lookup | undefined {
    for (let n = suffixes.length; n > 0; n--) {
      const found = this.get([key, ...suffixes.slice(0, n)].join('.'));
      if (found !== undefined) return found;
    }
    return this.get(key);
  }

  private lookupVar(name: string): string | undefined {
    if (name.startsWith('env.') && name.length > 4) {
      const spec = name.slice(4);
      const m = /^([^:-]+)(:?-)(.*)$/.exec(spec);
      if (m === null) return this.env[spec];
      const [, envName, op, dflt] = m as unknown as [string, string, string, string];
      const v = this.env[envName];
      if (op === ':-') return v === undefined || v === '' ? dflt : v;
      return v === undefined ? dflt : v;
    }
    if (Object.prototype.hasOwnProperty.call(this.systemProps, name)) return this.systemProps[name];
    return this.entries.get(name)?.value;
  }

  private expand(value: string, key: string, where: string, unresolved: string[]): string {
    let out = value;
    for (let i = 0; i < MAX_SUBST; i++) {
      const m = VAR.exec(out);
      if (m === null) return out;
      const v = this.lookupVar(m[1] as string);
      if (v === undefined) {
        unresolved.push(m[1] as string);
        return out;
      }
      out = out.slice(0, m.index) + v + out.slice(m.index + m[0].length);
    }
    if (VAR.test(out)) {
      throw new ConfigError(
        `${escapeControls(where)}: ${escapeControls(key)}: variable substitution depth too large (over ${MAX_SUBST} substitutions; does it refer to itself?) in ${JSON.stringify(value)}`,
      );
    }
    return out;
  }
}
