/**
 * `sekisho agent` as a process: --check, a bad configuration named by its key,
 * and a locked token said in both languages with exit status 2 (so a service
 * manager does not restart it into more wrong tries).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { certificatesFromPem } from '../../pki/index.js';
import { openSoftwareToken } from '../../token/index.js';
import { hasCommand, run } from '../../testing/peers.js';
import { tempDir } from '../../testing/stores.js';

const MAIN = fileURLToPath(new URL('../main.js', import.meta.url));
const repo = fileURLToPath(new URL('../../../..', import.meta.url));

function sekisho(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [MAIN, ...args], { env: { PATH: process.env.PATH, LANG: 'C.UTF-8', ...env }, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

test('agent --check accepts the shipped example and names the offending key of a bad file', () => {
  const ok = sekisho(['agent', '--config', join(repo, 'docs/examples/agent.yaml'), '--check']);
  assert.equal(ok.status, 0, ok.stderr);
  const dir = tempDir();
  const bad = join(dir, 'agent.yaml');
  writeFileSync(bad, readFileSync(join(repo, 'docs/examples/agent.yaml'), 'utf8').replace('httpProxy: 127.0.0.1:3128', 'httpProxy: 0.0.0.0:3128'));
  const r = sekisho(['agent', '--config', bad, '--check']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^sekisho: AGENT_LISTEN_NOT_LOOPBACK: listen\.httpProxy: 0\.0\.0\.0 is not a loopback address.* \/ .*ループバック/m);
});

test('a locked token: the agent process says PIN_LOCKED in English and Japanese, exits 2, and does not try the PIN', async (t) => {
  if (!hasCommand('openssl')) return t.skip('openssl missing');
  const dir = tempDir();
  run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'root.key'), '-out', join(dir, 'root.pem'), '-subj', '/CN=test root', '-days', '2']);
  const thumb = createHash('sha256').update(certificatesFromPem(readFileSync(join(dir, 'root.pem'), 'utf8'))[0]!).digest('hex');
  const token = join(dir, 'token.json');
  const m = openSoftwareToken(token);
  await m.initToken(0, { label: 'clinic', soPin: 'so-PIN-123456', userPin: 'user-PIN-123456' });
  for (let i = 0; i < 3; i++) {
    const s = await m.openSession(0);
    await s.login('user', 'wrong-PIN-0000').catch(() => undefined);
    await s.close();
  }
  writeFileSync(join(dir, 'agent.yaml'), `center: { gateway: "127.0.0.1:1", rootThumbprint: "${thumb}" }\ncredential: { token: "software:token.json", pin: { env: AGENT_PIN } }\nlisten: { httpProxy: "127.0.0.1:0" }\n`);
  const r = sekisho(['agent', '--config', join(dir, 'agent.yaml')], { AGENT_PIN: 'user-PIN-123456' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^sekisho: PIN_LOCKED: .*stops and will not try again.* \/ .*ロック/m);
  assert.ok(!r.stderr.includes('user-PIN-123456') && !r.stdout.includes('user-PIN-123456'));
  assert.equal((await openSoftwareToken(token).tokenInfo(0)).userPinFailures, 3);
});
