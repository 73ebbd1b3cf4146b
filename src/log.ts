/**
 * Structured logging: one JSON object a line (or a readable line on a TTY / format=pretty).
 * Kept in-house: the whole need is ~60 lines, and it must never throw on odd field values.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LoggerOptions {
  level?: LogLevel;
  format?: 'json' | 'pretty';
  write?: (line: string) => void;
  base?: LogFields;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? 'info';
  const format = opts.format ?? 'json';
  const write = opts.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const make = (base: LogFields): Logger => {
    const emit = (lvl: LogLevel, msg: string, fields?: LogFields) => {
      if (ORDER[lvl] < ORDER[level]) return;
      const rec: LogFields = { time: new Date().toISOString(), level: lvl, msg, ...base, ...fields };
      write(format === 'json' ? safeJson(rec) : pretty(rec));
    };
    return {
      debug: (m, f) => emit('debug', m, f),
      info: (m, f) => emit('info', m, f),
      warn: (m, f) => emit('warn', m, f),
      error: (m, f) => emit('error', m, f),
      child: (f) => make({ ...base, ...f }),
    };
  };
  return make(opts.base ?? {});
}

export const silentLogger: Logger = createLogger({ write: () => {} });

function safeJson(rec: LogFields): string {
  try {
    return JSON.stringify(rec, (_k, v: unknown) => {
      if (typeof v === 'bigint') return v.toString();
      if (v instanceof Error)
        return { name: v.name, message: v.message, code: (v as { code?: unknown }).code };
      return v;
    });
  } catch {
    return JSON.stringify({
      time: rec.time,
      level: rec.level,
      msg: rec.msg,
      logError: 'unserialisable fields',
    });
  }
}

function pretty(rec: LogFields): string {
  const { time, level, msg, ...rest } = rec;
  const extra = Object.keys(rest).length ? ' ' + safeJson(rest) : '';
  return `${String(time).slice(11, 23)} ${String(level).toUpperCase().padEnd(5)} ${String(msg)}${extra}`;
}
