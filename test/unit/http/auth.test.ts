import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BearerAuth, readToken } from '../../../src/http/auth.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hafc-token-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, content, { mode: 0o600 });
  return f;
}

describe('bearer token', () => {
  it('reads the token file trimmed', async () => {
    expect(await readToken(file('ok', '  abc-123\n\n'))).toBe('abc-123');
  });

  it('an empty, missing or multi-word file is a config error that never shows the token', async () => {
    await expect(readToken(file('empty', ' \n'))).rejects.toThrow(
      /^control\.tokenFile: ".*empty" is empty; it must hold the bearer token$/,
    );
    await expect(readToken(path.join(dir, 'absent'))).rejects.toThrow(
      /^control\.tokenFile: cannot read ".*absent": ENOENT/,
    );
    const err = await readToken(file('two', 'secret-one secret-two\n')).catch((e: Error) => e);
    expect(err).toMatchObject({ code: 'ECONFIG' });
    expect(String(err)).toMatch(/must hold one token without spaces or line breaks \(got 21 characters/);
    expect(String(err)).not.toContain('secret');
  });

  it('checks the header: ok, missing, wrong; disabled without a token', () => {
    const a = new BearerAuth('tok');
    expect(a.check('Bearer tok')).toBe('ok');
    expect(a.check('bearer  tok ')).toBe('ok');
    expect(a.check(undefined)).toBe('missing');
    expect(a.check('tok')).toBe('missing');
    expect(a.check('Bearer tok extra')).toBe('missing');
    expect(a.check('Bearer tok2')).toBe('wrong');
    expect(a.check('Bearer to')).toBe('wrong');
    expect(new BearerAuth(null).check('Bearer tok')).toBe('disabled');
  });
});
