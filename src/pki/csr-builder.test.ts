import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildCsr } from './csr-builder.js';
import { parseCsr } from './csr.js';
import { certificatesFromPkcs7, certsOnlyPkcs7 } from './pkcs7.js';
import { encodeName } from './name.js';
import { generateKey } from './keys.js';
import { SoftwareSigner } from './signer.js';
import { isSekishoError } from '../errors/index.js';

test('buildCsr: a request signed through a Signer verifies, with the subject byte for byte (EC and RSA)', async () => {
  for (const type of ['ecdsa-p256', 'ecdsa-p384', 'rsa-2048'] as const) {
    const pair = await generateKey(type);
    const subject = encodeName([{ type: 'C', value: 'JP' }, { type: 'O', value: 'はこだてクリニック' }, { type: 'CN', value: '0110113719' }]);
    const csr = parseCsr(await buildCsr(subject, new SoftwareSigner(pair.privateKey)));
    assert.deepEqual(csr.subject.map((a) => a.value), ['JP', 'はこだてクリニック', '0110113719']);
    assert.ok(csr.publicKey.equals(pair.publicKey), type);
  }
});

test('certificatesFromPkcs7 reads what certsOnlyPkcs7 writes (EST answers), in order; other DER is PKCS7_INVALID', () => {
  const a = Buffer.from('3003020101', 'hex');
  const b = Buffer.from('3003020102', 'hex');
  assert.deepEqual(certificatesFromPkcs7(certsOnlyPkcs7([a, b])), [a, b]);
  assert.throws(() => certificatesFromPkcs7(Buffer.from('3003020101', 'hex')), (e: unknown) => isSekishoError(e) && e.code === 'PKCS7_INVALID');
  assert.throws(() => certificatesFromPkcs7(Buffer.from('30', 'hex')), (e: unknown) => isSekishoError(e));
});
