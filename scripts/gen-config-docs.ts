/** `npm run docs:config`: writes docs/config.md and docs/hafc.schema.json from the declaration. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { configDocs, repo } from './config-docs.js';

for (const file of await configDocs()) {
  const path = join(repo, file.path);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, file.text);
  console.log(`wrote ${file.path}`);
}
