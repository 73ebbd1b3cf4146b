/**
 * Reading a config file without trusting what the path names: a FIFO must not block the agent,
 * a device (/dev/urandom) or a huge file must not exhaust its memory or keep the parser busy.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { ConfigError, errorMessage } from '../errors.js';
import { escapeControls } from './format.js';

/**
 * The largest config file read. The longest example (config/shell.yaml, every key commented) is
 * under 6 KiB, and the agents to come add dozens of keys, not thousands: 256 KiB is 40 times any
 * real config. The worst YAML of that size (one short key per line, ~50k keys) still parses in
 * about a second on a loaded 2-core machine; 1 MiB of it took 2-5 s, a stall at agent start.
 */
export const MAX_CONFIG_BYTES = 256 * 1024;

function what(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

function tooBig(path: string, size: string): ConfigError {
  return new ConfigError(
    `config ${path}: the file is ${size} bytes, over the limit of ${MAX_CONFIG_BYTES} bytes (256 KiB) for a config file; is this the right file?`,
  );
}

/** Reads up to MAX_CONFIG_BYTES + 1 bytes: a file that grew after fstat is still caught. */
async function readBounded(handle: FileHandle): Promise<Buffer> {
  const buf = Buffer.alloc(MAX_CONFIG_BYTES + 1);
  let length = 0;
  while (length < buf.length) {
    const { bytesRead } = await handle.read(buf, length, buf.length - length, length);
    if (bytesRead === 0) break;
    length += bytesRead;
  }
  return buf.subarray(0, length);
}

/** The text of the config file at `path`, or a ConfigError naming the path and what is wrong. */
export async function readConfigFile(path: string): Promise<string> {
  const shown = escapeControls(path);
  let handle: FileHandle;
  try {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever.
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw new ConfigError(`config ${shown}: cannot read the file: ${escapeControls(errorMessage(err))}`, {
      cause: err,
    });
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) {
      throw new ConfigError(
        `config ${shown}: is ${what(st)}, not a regular file; give the path of a YAML file`,
      );
    }
    if (st.size > MAX_CONFIG_BYTES) throw tooBig(shown, String(st.size));
    const bytes = await readBounded(handle);
    if (bytes.length > MAX_CONFIG_BYTES) throw tooBig(shown, `over ${MAX_CONFIG_BYTES}`);
    const nul = bytes.indexOf(0);
    if (nul !== -1) {
      throw new ConfigError(`config ${shown}: has a NUL byte at offset ${nul}; a config file is YAML text`);
    }
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      throw new ConfigError(`config ${shown}: is not UTF-8 text; a config file is YAML text in UTF-8`);
    }
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`config ${shown}: cannot read the file: ${escapeControls(errorMessage(err))}`, {
      cause: err,
    });
  } finally {
    await handle.close();
  }
}
