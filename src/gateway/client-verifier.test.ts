/**
 * The gateway's own verdict on a client chain (client-verifier.ts, and the
 * policy it applies) agrees with OpenSSL's on chains from a CA sekisho does
 * not run, made here by the openssl CLI as a prefectural CA would make them:
 * the self-check reports, and a policy switch re-judges, with this verdict,
 * so it must not call good what `openssl verify -purpose sslclient` (and the
 * handshake) refuses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { ClientVerifier } from './client-verifier.js';
import { needCommand } from '../testing/peers.js';
import { tempDir } from '../testing/stores.js';

const EXTENSIONS = [
  '[root_pathlen0]', 'basicConstraints = critical, CA:TRUE, pathlen:0', 'keyUsage = critical, keyCertSign, cRLSign', 'subjectKeyIdentifier = hash',
  '[root_pathlen1]', 'basicConstraints = critical, CA:TRUE, pathlen:1', 'keyUsage = critical, keyCertSign, cRLSign', 'subjectKeyIdentifier = hash',
  '[sub_ca]', 'basicConstraints = critical, CA:TRUE', 'keyUsage = critical, keyCertSign, cRLSign, digitalSignature', 'subjectKeyIdentifier = hash', 'authorityKeyIdentifier = keyid',
  '[client]', 'basicConstraints = critical, CA:FALSE', 'keyUsage = critical, digitalSignature', 'extendedKeyUsage = clientAuth', 'authorityKeyIdentifier = keyid',
  '[client_key_agreement]', 'basicConstraints = critical, CA:FALSE', 'keyUsage = critical, keyAgreement', 'extendedKeyUsage = clientAuth', 'authorityKeyIdentifier = keyid',
  '[client_encipherment_only]', 'basicConstraints = critical, CA:FALSE', 'keyUsage = critical, keyEncipherment', 'extendedKeyUsage = clientAuth', 'authorityKeyIdentifier = keyid',
  '',
].join('\n');

test('chains from a foreign CA: the verifier accepts exactly what openssl verify -purpose sslclient accepts (path length constraints, the leaf\'s keyUsage)', (t) => {
  if (!needCommand(t, 'openssl')) return;
  const dir = tempDir('sekisho-foreign-chains-');
  writeFileSync(join(dir, 'ext.cnf'), EXTENSIONS);
  const openssl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const key = (name: string) => openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`]);
  const root = (name: string, ext: string) => {
    key(name);
    openssl(['req', '-x509', '-new', '-key', `${name}.key`, '-out', `${name}.pem`, '-subj', `/C=JP/O=Prefecture/CN=${name}`, '-days', '30', '-config', 'ext.cnf', '-extensions', ext]);
  };
  let serial = 16;
  const issue = (name: string, cn: string, by: string, ext: string) => {
    key(name);
    openssl(['req', '-new', '-key', `${name}.key`, '-out', `${name}.csr`, '-subj', `/C=JP/O=Clinic/CN=${cn}`]);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${by}.pem`, '-CAkey', `${by}.key`, '-set_serial', String(serial++), '-days', '10', '-sha256', '-extfile', 'ext.cnf', '-extensions', ext, '-out', `${name}.pem`]);
  };
  root('root0', 'root_pathlen0');
  root('root1', 'root_pathlen1');
  // A facility certificate mis-issued with CA:TRUE under each root, and what its holder then signs for another facility.
  issue('sub0', '1312345670', 'root0', 'sub_ca');
  issue('minted0', '0110113719', 'sub0', 'client');
  issue('sub1', '1312345670', 'root1', 'sub_ca');
  issue('minted1', '0110113719', 'sub1', 'client');
  issue('direct', '0110113719', 'root0', 'client');
  issue('agreement', '0110113719', 'root0', 'client_key_agreement');
  issue('encipherment', '0110113719', 'root0', 'client_encipherment_only');

  const cases: [leaf: string, root: string, intermediate?: string][] = [
    ['direct', 'root0'],
    ['agreement', 'root0'],
    ['encipherment', 'root0'],
    ['minted0', 'root0', 'sub0'],
    ['minted1', 'root1', 'sub1'],
  ];
  const seen: Record<string, boolean> = {};
  for (const [leaf, rootName, intermediate] of cases) {
    const r = spawnSync('openssl', ['verify', '-purpose', 'sslclient', '-CAfile', `${rootName}.pem`, ...(intermediate ? ['-untrusted', `${intermediate}.pem`] : []), `${leaf}.pem`], { cwd: dir, encoding: 'utf8' });
    const opensslAccepts = r.status === 0 && /: OK/.test(r.stdout);
    const x = (f: string) => new X509Certificate(readFileSync(join(dir, `${f}.pem`)));
    const verifier = new ClientVerifier({ anchors: [x(rootName)], policy: { exceptions: [] }, revocation: [], revocationUsable: () => true });
    const verdict = verifier.verify(x(leaf), intermediate ? [x(intermediate)] : []);
    assert.equal(verdict.ok, opensslAccepts, `${leaf}: openssl ${opensslAccepts ? 'accepts' : `refuses (${(r.stdout + r.stderr).trim().split('\n').pop()})`}, sekisho ${verdict.ok ? 'accepts' : `refuses (${verdict.reason}: ${verdict.detail})`}`);
    seen[leaf] = verdict.ok;
  }
  // What the cases are about, so that the agreement is not vacuous.
  assert.deepEqual(seen, { direct: true, agreement: true, encipherment: false, minted0: false, minted1: true });
});
