/**
 * Structured logging: one JSON object a line (or a readable line with log.format: pretty; the
 * format is never picked from whether stderr is a terminal).
 * Kept in-house: the whole need is small, and it must never throw on odd field values.
 *
 * Logging must never take the agent down: an active agent that dies on a full disk or a closed
 * pipe leaves its service active with nobody watching it. So a line that cannot be written is
 * dropped and counted (`droppedLines()`), never thrown and never left as an unhandled 'error'.
 */
import fs from 'node:fs';
import type { Writable } from 'node:stream';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

/** What createLogger returns: a Logger that also says how many lines it lost. */
export interface CountingLogger extends Logger {
  child(fields: LogFields): CountingLogger;
  /** Lines lost because they could not be written (shared by a logger and all its children). */
  droppedLines(): number;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LoggerOptions {
  level?: LogLevel;
  format?: 'json' | 'pretty';
  /** Where lines go (without the newline); a throw counts the line as dropped. @default stderr */
  write?: (line: string) => void;
  base?: LogFields;
}

/** Level and format, shared by a logger and all its children, so a reload can change them. */
interface Settings {
  level: LogLevel;
  format: 'json' | 'pretty';
}

const settingsOf = new WeakMap<Logger, Settings>();

/**
 * Changes the level and format of a logger made by createLogger, and of all its children (made
 * before or after); false for any other logger. A reload (SIGHUP) uses it: the agent's loggers
 * are handed out at start and cannot be swapped.
 */
export function setLogOptions(logger: Logger, opts: Partial<Settings>): boolean {
  const s = settingsOf.get(logger);
  if (s === undefined) return false;
  if (opts.level !== undefined) s.level = opts.level;
  if (opts.format !== undefined) s.format = opts.format;
  return true;
}

export function createLogger(opts: LoggerOptions = {}): CountingLogger {
  const settings: Settings = { level: opts.level ?? 'info', format: opts.format ?? 'json' };
  let dropped = 0;
  const drop = () => {
    dropped++;
  };
  const custom = opts.write;
  const write = custom ?? ((line: string) => stderrSink().write(line + '\n', drop));
  const make = (base: LogFields): CountingLogger => {
    const emit = (lvl: LogLevel, msg: string, fields?: LogFields) => {
      if (ORDER[lvl] < ORDER[settings.level]) return;
      try {
        const rec: LogFields = { time: new Date().toISOString(), level: lvl, msg, ...base, ...fields };
        write(settings.format === 'json' ? safeJson(rec) : pretty(rec));
      } catch {
        // A throwing writer (or a field with a throwing getter): the line is lost, not the agent.
        drop();
      }
    };
    const logger: CountingLogger = {
      debug: (m, f) => emit('debug', m, f),
      info: (m, f) => emit('info', m, f),
      warn: (m, f) => emit('warn', m, f),
      error: (m, f) => emit('error', m, f),
      child: (f) => make({ ...base, ...f }),
      droppedLines: () => dropped,
    };
    settingsOf.set(logger, settings);
    return logger;
  };
  return make(opts.base ?? {});
}

export const silentLogger: Logger = createLogger({ write: () => {} });

/**
 * While more than this many bytes wait for a slow reader (a stalled pipe or journald), new lines
 * are dropped: a stuck log reader must cost neither unbounded memory nor a blocked event loop.
 */
export const MAX_QUEUED_LOG_BYTES = 1024 * 1024;

export interface LineSink {
  /** Writes `text`; calls `onDrop` (now or later) if it could not be written. Never throws. */
  write(text: string, onDrop: () => void): void;
}

let stderr: LineSink | undefined;

/**
 * The process's one writer to fd 2, created on first use.
 *
 * - A pipe or socket (journald, `| logger`) goes through process.stderr: libuv writes it without
 *   blocking, so a reader that stops reading cannot freeze the agent (a blocking write would, and
 *   with it the lease watchdog). The queue is capped; an EPIPE is reported to the write callback,
 *   and the stream, once errored, takes no more lines.
 * - Anything else (a file, /dev/full, a terminal) is written synchronously with fs.writeSync, each
 *   line on its own: a full disk costs the lines written while it is full, and logging resumes by
 *   itself once there is space again (process.stderr would stay errored for good).
 *
 * In both cases an 'error' listener sits on process.stderr, so that a failure of a write by
 * somebody else (a Node warning) is not an unhandled 'error' event either.
 */
export function stderrSink(): LineSink {
  if (stderr) return stderr;
  process.stderr.on('error', () => {
    // Counted by whoever wrote; an unhandled 'error' would be an uncaught exception.
  });
  stderr = isPipeOrSocket(2) ? streamSink(process.stderr) : fdSink(2);
  return stderr;
}

function isPipeOrSocket(fd: number): boolean {
  try {
    const st = fs.fstatSync(fd);
    return st.isFIFO() || st.isSocket();
  } catch {
    return false;
  }
}

export function streamSink(stream: Writable): LineSink {
  return {
    write(text, onDrop) {
      try {
        if (stream.errored || stream.destroyed || stream.writableLength > MAX_QUEUED_LOG_BYTES) {
          onDrop();
          return;
        }
        stream.write(text, (err) => {
          if (err) onDrop();
        });
      } catch {
        onDrop();
      }
    },
  };
}

export function fdSink(fd: number): LineSink {
  return {
    write(text, onDrop) {
      try {
        const buf = Buffer.from(text);
        let off = 0;
        while (off < buf.length) {
          const n = fs.writeSync(fd, buf, off);
          if (n <= 0) throw new Error(`write to fd ${fd} wrote nothing`);
          off += n;
        }
      } catch {
        onDrop();
      }
    },
  };
}

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
