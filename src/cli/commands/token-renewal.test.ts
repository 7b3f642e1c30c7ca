/**
 * `sekisho token keygen --successor`, `token csr`, `token cert`, `token delete`:
 * renewing a credential inside a token by hand, on both token kinds (the
 * software token and SoftHSM2), with openssl as the CA that signs the request
 * and the judge of its signature. Regression: a renewed key could not sit
 * beside the old one (TOKEN_KEY_EXISTS), so a renewed certificate could not
 * replace the old one in a token.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../../testing/stores.js';
import { hasCommand, run, underCi } from '../../testing/peers.js';
import { hasSoftHsm, SOFTHSM_MODULE, useTemporarySoftHsm } from '../../testing/softhsm.js';

const MAIN = fileURLToPath(new URL('../main.js', import.meta.url));
const PINS = { SEKISHO_PIN: 'renew-PIN-3141', SEKISHO_SO_PIN: 'renew-SO-2718' };

function sekisho(args: string[], env: Record<string, string | undefined> = PINS) {
  const e: NodeJS.ProcessEnv = { PATH: process.env.PATH, LANG: 'C.UTF-8', SOFTHSM2_CONF: process.env.SOFTHSM2_CONF, ...env };
  const r = spawnSync(process.execPath, [MAIN, ...args], { env: e });
  return { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}
function ok(args: string[]) {
  const r = sekisho(args);
  assert.equal(r.status, 0, `sekisho ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
function openssl(args: string[]) {
  const r = run('openssl', args);
  assert.equal(r.status, 0, `openssl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const kinds: [string, () => string[] | undefined][] = [
  ['software token', () => ['--token', join(tempDir('sekisho-renew-'), 'clinic.token')]],
  [
    'SoftHSM2',
    () => {
      if (!hasSoftHsm()) return undefined;
      useTemporarySoftHsm();
      return ['--module', SOFTHSM_MODULE, '--label', 'clinic'];
    },
  ],
];

describe('renewing a credential inside a token with the CLI', () => {
  for (const [kind, make] of kinds) {
    test(`${kind}: keygen --successor keeps both keys under distinct ids; csr is signed in the token; cert replaces; delete removes the old key`, (t) => {
      if (!hasCommand('openssl') || (kind === 'SoftHSM2' && !hasSoftHsm())) {
        if (underCi) assert.fail(`${kind} or openssl missing under CI`);
        t.skip('peer missing');
        return;
      }
      const tk = make()!;
      const dir = tempDir('sekisho-renew-ca-');
      ok(['token', 'init', ...tk, '--label', 'clinic']);
      // A CA of openssl's, and the first certificate for the first key.
      openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.pem'), '-subj', '/CN=renewal test CA', '-days', '2']);
      const first = JSON.parse(ok(['token', 'keygen', ...tk, '--key-label', 'facility', '--json'])) as { id: string };
      const sign = (csrPem: string, name: string) => {
        const csr = join(dir, `${name}.csr`);
        writeFileSync(csr, csrPem);
        openssl(['req', '-in', csr, '-verify', '-noout']);
        openssl(['x509', '-req', '-in', csr, '-CA', join(dir, 'ca.pem'), '-CAkey', join(dir, 'ca.key'), '-CAcreateserial', '-days', '1', '-sha256', '-out', join(dir, `${name}.pem`)]);
        return join(dir, `${name}.pem`);
      };
      const csr1 = join(dir, 'first-subject.pem');
      openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'x.key'), '-out', csr1, '-subj', '/C=JP/O=Hakodate Clinic/CN=0110113719', '-days', '1']);
      const cert1 = sign(ok(['token', 'csr', ...tk, '--key-label', 'facility', '--subject-from', csr1]), 'first');
      ok(['token', 'cert', ...tk, '--cert', cert1, '--key-label', 'facility']);

      // Regression: a second key under the label is refused without --successor, kept with it.
      const refused = sekisho(['token', 'keygen', ...tk, '--key-label', 'facility']);
      assert.match(refused.stderr, /TOKEN_KEY_EXISTS: .*--successor/);
      const second = JSON.parse(ok(['token', 'keygen', ...tk, '--key-label', 'facility', '--successor', '--json'])) as { id: string };
      assert.notEqual(second.id, first.id);
      assert.match(sekisho(['token', 'csr', ...tk, '--key-label', 'facility']).stderr, /TOKEN_KEY_AMBIGUOUS/);

      // The request repeats the current certificate's subject and is signed by the new key.
      const csrPem = ok(['token', 'csr', ...tk, '--key-label', 'facility', '--id', second.id]);
      const csrFile = join(dir, 'second.csr');
      writeFileSync(csrFile, csrPem);
      assert.match(openssl(['req', '-in', csrFile, '-noout', '-subject', '-nameopt', 'RFC2253']), /CN=0110113719,O=Hakodate Clinic,C=JP/);
      const cert2 = sign(csrPem, 'second');
      ok(['token', 'cert', ...tk, '--cert', cert2]);
      const list = () => (JSON.parse(ok(['token', 'list', ...tk, '--json'])) as { objects: { class: string; id: string }[] }).objects;
      assert.deepEqual(list().filter((o) => o.class === 'certificate').map((o) => o.id).sort(), [first.id, second.id].sort());

      // The old key goes with everything under its id.
      const removed = JSON.parse(ok(['token', 'delete', ...tk, '--key-label', 'facility', '--id', first.id, '--json'])) as { removed: number };
      assert.equal(removed.removed, 3, 'private key, public key, certificate');
      assert.ok(list().every((o) => o.id === second.id || o.class === 'data'));
      // A certificate for a key the token does not hold is refused.
      assert.match(sekisho(['token', 'cert', ...tk, '--cert', cert1]).stderr, /TOKEN_KEY_NOT_FOUND/);
    });
  }
});
