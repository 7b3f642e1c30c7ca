import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { needCommand, run } from '../testing/peers.js';
import { buildOcspResponse, ocspErrorResponse, parseOcspRequest } from './ocsp.js';
import { generateKey, spkiDer } from './keys.js';
import { SoftwareSigner } from './signer.js';

describe('OCSP responses read by openssl', () => {
  test('good, revoked (with reason) and unknown in one response; an unsigned error response', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const dir = mkdtempSync(join(tmpdir(), 'sekisho-ocsp-'));
    // A request from openssl itself, for three serials of a throwaway issuer.
    run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'ca.key'), '-subj', '/CN=ocsp test CA', '-days', '2', '-out', join(dir, 'ca.pem')]);
    const r = run('openssl', ['ocsp', '-issuer', join(dir, 'ca.pem'), '-serial', '0x0a', '-serial', '0x0b', '-serial', '0x0c', '-reqout', join(dir, 'req.der')]);
    assert.equal(r.status, 0, r.stderr);
    const req = parseOcspRequest(readFileSync(join(dir, 'req.der')));
    assert.deepEqual(req.certIds.map((c) => c.serialHex), ['0a', '0b', '0c']);
    assert.ok(req.nonceExtension, 'openssl sends a nonce by default');
    const { privateKey } = await generateKey('ecdsa-p256');
    const signer = new SoftwareSigner(privateKey);
    const now = new Date();
    const der = await buildOcspResponse({
      signer,
      responderSpki: spkiDer(signer.publicKey),
      producedAt: now,
      responses: [
        { certIdDer: req.certIds[0]!.der, certStatus: { status: 'good' }, thisUpdate: now },
        { certIdDer: req.certIds[1]!.der, certStatus: { status: 'revoked', revokedAt: now, reason: 'superseded' }, thisUpdate: now, nextUpdate: new Date(now.getTime() + 3_600_000) },
        { certIdDer: req.certIds[2]!.der, certStatus: { status: 'unknown' }, thisUpdate: now },
      ],
      nonceExtension: req.nonceExtension!,
    });
    writeFileSync(join(dir, 'resp.der'), der);
    const text = run('openssl', ['ocsp', '-respin', join(dir, 'resp.der'), '-resp_text', '-noverify']);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /Response Status: successful/);
    assert.match(text.stdout, /Cert Status: good[\s\S]*Cert Status: revoked[\s\S]*Revocation Reason: superseded[\s\S]*Cert Status: unknown/);
    assert.match(text.stdout, /Responder Id: [0-9A-F]{40}/);
    assert.match(text.stdout, /OCSP Nonce/);
    writeFileSync(join(dir, 'err.der'), ocspErrorResponse('malformedRequest'));
    const err = run('openssl', ['ocsp', '-respin', join(dir, 'err.der'), '-resp_text']);
    assert.match(err.stdout + err.stderr, /malformedrequest/i);
  });
});
