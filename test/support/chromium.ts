/**
 * Opens a local HTML file in headless Chromium (Debian's `chromium`, installed by
 * scripts/setup.sh) and returns the DOM after its scripts ran (--dump-dom). No network: the flags
 * keep the browser's own background traffic off, and the pages tested load nothing.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const CHROMIUM = '/usr/bin/chromium';

export async function dumpDom(file: string, timeoutMs = 60_000): Promise<string> {
  if (!fs.existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: run scripts/setup.sh (Debian package chromium)`);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'hafc-chromium-'));
  try {
    const { stdout } = await run(
      CHROMIUM,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        `--user-data-dir=${profile}`,
        '--dump-dom',
        `file://${path.resolve(file)}`,
      ],
      { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
    );
    return stdout;
  } finally {
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

export interface TimelineSummary {
  lanes: string[];
  roleSegments: number;
  activeSegments: number;
  phases: Record<string, number>;
  faults: number;
  violations: number;
  width: number;
}

/** The summary the timeline page's own script writes into #summary once it has drawn. */
export function timelineSummary(dom: string): TimelineSummary {
  const m = /TIMELINE-SUMMARY (\{.*?\})<\/pre>/.exec(dom);
  if (!m)
    throw new Error(
      `the page's script wrote no TIMELINE-SUMMARY; #summary holds: ${/<pre id="summary">(.*?)<\/pre>/s.exec(dom)?.[1] ?? '(no #summary)'}`,
    );
  return JSON.parse(m[1]!) as TimelineSummary;
}
