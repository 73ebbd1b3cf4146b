/**
 * The generated config reference and JSON Schema, as the repository must hold them: rendered
 * from the declaration (src/config/schema.ts), then formatted by the project's prettier so that
 * `prettier --check .` agrees with the generator. Shared by gen-config-docs.ts and the unit test
 * that fails when the committed files are stale.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as prettier from 'prettier';
import { renderJsonSchema } from '../src/config/json-schema.js';
import { renderReference } from '../src/config/reference.js';

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

export function configDocs(): Promise<GeneratedFile[]> {
  return Promise.all([
    formatted('docs/config.md', renderReference()),
    formatted('docs/hafc.schema.json', `${JSON.stringify(renderJsonSchema(), null, 2)}\n`),
  ]);
}
