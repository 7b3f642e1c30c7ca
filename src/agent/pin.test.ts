import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readPin } from './pin.js';
import { isSekishoError } from '../errors/index.js';
import { tempDir } from '../testing/stores.js';

const code = (c: string) => (e: unknown) => isSekishoError(e) && e.code === c;

test('PIN from a file readable only by the agent; a group- or world-readable file is refused, naming the fix', async () => {
  const file = join(tempDir(), 'pin');
  writeFileSync(file, ' 123456\n', { mode: 0o600 });
  assert.equal(await readPin({ file }, { env: {}, isTTY: false }), '123456');
  for (const mode of [0o640, 0o604, 0o644]) {
    chmodSync(file, mode);
    await assert.rejects(readPin({ file }, { env: {}, isTTY: false }), (e: unknown) => code('PIN_FILE_PERMISSIONS')(e) && /chmod 600/.test((e as Error).message) && !/123456/.test((e as Error).message));
  }
});

test('PIN from the environment, or a prompt only on a terminal; a missing PIN is PIN_REQUIRED', async () => {
  assert.equal(await readPin({ env: 'P' }, { env: { P: 'abcdef' }, isTTY: false }), 'abcdef');
  await assert.rejects(readPin({ env: 'P' }, { env: {}, isTTY: false }), code('PIN_REQUIRED'));
  await assert.rejects(readPin('prompt', { env: {}, isTTY: false }), code('PIN_REQUIRED'));
  assert.equal(await readPin('prompt', { env: {}, isTTY: true, prompt: async () => 'typed-pin' }), 'typed-pin');
});
