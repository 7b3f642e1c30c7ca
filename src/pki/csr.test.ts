import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCsr } from './csr.js';
import { pemOrDer } from './certificate.js';
import { describePublicKey } from './keys.js';
import { SekishoError } from '../errors/index.js';
import { needCommand, run } from '../testing/peers.js';
import { tempDir } from '../testing/stores.js';

const isCode = (code: string) => (e: unknown) => e instanceof SekishoError && e.code === code;

function opensslCsr(dir: string, name: string, keyArgs: string[], extra: string[] = []): Buffer {
  const r = run('openssl', ['req', '-new', '-nodes', '-utf8', ...keyArgs, '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.csr`), '-subj', '/C=JP/O=テスト/CN=evil.example', ...extra]);
  assert.equal(r.status, 0, r.stderr);
  return readFileSync(join(dir, `${name}.csr`));
}

test('parses and verifies openssl CSRs: EC P-256, P-384, RSA-2048, PEM and DER, with requested extensions', (t) => {
  if (!needCommand(t, 'openssl')) return;
  const dir = tempDir();
  const ec = opensslCsr(dir, 'ec', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], ['-addext', 'subjectAltName=DNS:a.example,IP:127.0.0.1']);
  const parsed = parseCsr(ec);
  assert.equal(describePublicKey(parsed.publicKey).keyType, 'ecdsa-p256');
  assert.deepEqual(parsed.subject, [
    { type: 'C', value: 'JP' },
    { type: 'O', value: 'テスト' },
    { type: 'CN', value: 'evil.example' },
  ]);
  assert.deepEqual(parsed.requestedExtensions.subjectAltName, { dns: ['a.example'], ip: ['127.0.0.1'] });
  const der = pemOrDer(ec, ['CERTIFICATE REQUEST'], 'X', 'csr');
  assert.equal(parseCsr(der).der.length, der.length);
  assert.equal(describePublicKey(parseCsr(opensslCsr(dir, 'p384', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'])).publicKey).keyType, 'ecdsa-p384');
  assert.equal(describePublicKey(parseCsr(opensslCsr(dir, 'rsa', ['-newkey', 'rsa:2048'])).publicKey).keyType, 'rsa-2048');
});

test('refuses SHA-1 signed CSRs, altered CSRs, certificates and garbage with their own codes', (t) => {
  if (!needCommand(t, 'openssl')) return;
  const dir = tempDir();
  assert.throws(() => parseCsr(opensslCsr(dir, 'sha1', ['-newkey', 'rsa:2048', '-sha1'])), isCode('CSR_SHA1_SIGNATURE'));
  const der = pemOrDer(opensslCsr(dir, 'ec', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']), ['CERTIFICATE REQUEST'], 'X', 'csr');
  const altered = Buffer.from(der);
  altered[altered.length - 5]! ^= 0x01; // inside the signature
  assert.throws(() => parseCsr(altered), isCode('CSR_SIGNATURE_INVALID'));
  const subjectEdited = Buffer.from(der);
  const i = subjectEdited.indexOf(Buffer.from('evil'));
  subjectEdited[i] = 'g'.charCodeAt(0); // the signed part changed
  assert.throws(() => parseCsr(subjectEdited), isCode('CSR_SIGNATURE_INVALID'));
  assert.throws(() => parseCsr('hello'), isCode('CSR_MALFORMED'));
  assert.throws(() => parseCsr(Buffer.concat([der, Buffer.from([0])])), isCode('CSR_MALFORMED'));
  assert.throws(() => parseCsr(der.subarray(0, 40)), isCode('CSR_MALFORMED'));
  assert.throws(() => parseCsr('-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n'), isCode('CSR_MALFORMED'));
});

test('fuzz: 5,000 mutated and truncated CSRs only ever raise a SekishoError', (t) => {
  if (!needCommand(t, 'openssl')) return;
  const dir = tempDir();
  const seeds = [
    pemOrDer(opensslCsr(dir, 'a', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], ['-addext', 'subjectAltName=DNS:x.example']), ['CERTIFICATE REQUEST'], 'X', 'csr'),
    pemOrDer(opensslCsr(dir, 'b', ['-newkey', 'rsa:2048']), ['CERTIFICATE REQUEST'], 'X', 'csr'),
  ];
  let accepted = 0;
  for (let n = 0; n < 5000; n++) {
    const seed = seeds[n % seeds.length]!;
    let input = Buffer.from(seed);
    const kind = n % 4;
    if (kind === 0) input = input.subarray(0, Math.floor(Math.random() * input.length));
    else if (kind === 1) for (let k = 0; k < 1 + (n % 5); k++) input[Math.floor(Math.random() * input.length)] = Math.floor(Math.random() * 256);
    else if (kind === 2) input[Math.floor(Math.random() * Math.min(input.length, 12))] = Math.floor(Math.random() * 256); // headers and lengths
    else input = Buffer.concat([input.subarray(0, 20), Buffer.from(Array.from({ length: 30 }, () => Math.floor(Math.random() * 256))), input.subarray(20)]);
    try {
      parseCsr(input);
      accepted++;
    } catch (e) {
      assert.ok(e instanceof SekishoError, `mutation ${n} threw ${String(e)}`);
      assert.ok(!/\bat \w+ \(/.test(e.message), 'no stack traces in messages');
    }
  }
  assert.ok(accepted < 200, `only mutations that leave the signed data intact may pass (${accepted})`);
});
