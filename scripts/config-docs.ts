/**
 * The generated config reference and JSON Schema, as the repository must hold them: rendered
 * from the declaration (src/config/schema.ts), then formatted by the project's prettier so that
 * `prettier --check .` agrees with the generator. Shared by gen-config-docs.ts and the unit test
 * that fails when the committed files are stale. docs/cli.md is hand-written except for the
 * reload table between its markers (from src/config/reload.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as prettier from 'prettier';
import { renderJsonSchema } from '../src/config/json-schema.js';
import { renderReference } from '../src/config/reference.js';
import { renderReloadTable } from '../src/config/reload.js';

export const repo = fileURLToPath(new URL('..', import.meta.url));

export interface GeneratedFile {
  /** Relative to the repository. */
  path: string;
  text: string;
}

async function formatted(path: string, text: string): Promise<GeneratedFile> {
  const file = join(repo, path);
  const options = (await prettier.resolveConfig(file)) ?? {};
  return { path, text: await prettier.format(text, { ...options, filepath: file }) };
}

const RELOAD_BEGIN = '<!-- reload-keys: generated from src/config/reload.ts by npm run docs:config -->';
const RELOAD_END = '<!-- reload-keys: end -->';

/** `path` (committed) with the text between the markers replaced by `generated`. */
function spliced(path: string, generated: string): string {
  const text = readFileSync(join(repo, path), 'utf8');
  const begin = text.indexOf(RELOAD_BEGIN);
  const end = text.indexOf(RELOAD_END);
  if (begin < 0 || end < begin) throw new Error(`${path}: the reload-keys markers are missing`);
  return `${text.slice(0, begin + RELOAD_BEGIN.length)}\n\n${generated}\n\n${text.slice(end)}`;
}

export function configDocs(): Promise<GeneratedFile[]> {
  return Promise.all([
    formatted('docs/config.md', renderReference()),
    formatted('docs/hafc.schema.json', `${JSON.stringify(renderJsonSchema(), null, 2)}\n`),
    formatted('docs/cli.md', spliced('docs/cli.md', renderReloadTable())),
  ]);
}
