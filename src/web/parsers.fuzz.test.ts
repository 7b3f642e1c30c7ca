/**
 * Fuzzing the parsers that face the network: the portal's form and JSON
 * bodies, EST's Basic credentials and CSR bodies, and OCSP requests. Inputs
 * are random and mutated valid ones (a seeded generator, so a failure
 * repeats); every outcome must be a value or a typed SekishoError, never
 * another exception or a hang.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, createHash, sign } from 'node:crypto';
import { SekishoError } from '../errors/index.js';
import { parseCsr, parseOcspRequest, sequence, octetString, oid, integerFromUnsigned, nullValue, contextExplicit } from '../pki/index.js';
import { generateNoticeId } from '../ca/index.js';
import { estCsrDer, parseBasicAuth, parseCsrEnrollJson, parseEnrollForm, parseEnrollJson } from './index.js';
import { seededRandom as rng } from '../testing/seeded-random.js';


function mutate(input: Buffer, r: (n: number) => number): Buffer {
  const b = Buffer.from(input);
  const ops = 1 + r(4);
  let out = b;
  for (let i = 0; i < ops; i++) {
    switch (r(5)) {
      case 0:
        if (out.length) out[r(out.length)] = r(256);
        break;
      case 1:
        out = out.subarray(0, r(out.length + 1));
        break;
      case 2: {
        const at = r(out.length + 1);
        out = Buffer.concat([out.subarray(0, at), Buffer.from([r(256), r(256)]), out.subarray(at)]);
        break;
      }
      case 3:
        if (out.length) { const k = r(out.length); out[k] = (out[k] ?? 0) ^ (1 << r(8)); }
        break;
      default: {
        const at = r(out.length + 1);
        out = Buffer.concat([out.subarray(0, at), out.subarray(r(out.length + 1))]);
      }
    }
  }
  return out;
}

function typedOnly(fn: () => unknown, what: string): void {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof SekishoError, `${what}: ${String(e)}`);
    assert.ok(!/\bat \w+ \(/.test(e.message), `${what}: a stack trace in the message`);
  }
}

const ROUNDS = 3000;

describe('fuzzing the network-facing parsers', () => {
  test('portal form bodies', () => {
    const r = rng(0x5eed1);
    const valid = Buffer.from(new URLSearchParams({ request_id: generateNoticeId('request'), reference_id: generateNoticeId('reference'), password: 'pässwörd-12345', password_confirm: 'pässwörd-12345', key_type: 'ecdsa-p256', legacy: 'on' }).toString());
    assert.equal(parseEnrollForm(valid).legacy, true);
    for (let i = 0; i < ROUNDS; i++) typedOnly(() => parseEnrollForm(mutate(valid, r)), `form round ${i}`);
    for (let i = 0; i < 300; i++) typedOnly(() => parseEnrollForm(Buffer.from(Array.from({ length: r(300) }, () => r(256)))), `form random ${i}`);
  });

  test('JSON API bodies', () => {
    const r = rng(0x5eed2);
    const valid = Buffer.from(JSON.stringify({ requestId: generateNoticeId('request'), referenceId: generateNoticeId('reference'), password: 'x'.repeat(12), legacy: false }));
    const validCsr = Buffer.from(JSON.stringify({ requestId: 'a', referenceId: 'b', csr: '-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----' }));
    parseEnrollJson(valid);
    for (let i = 0; i < ROUNDS; i++) {
      typedOnly(() => parseEnrollJson(mutate(valid, r)), `json round ${i}`);
      typedOnly(() => parseCsrEnrollJson(mutate(validCsr, r)), `csr json round ${i}`);
    }
    for (const odd of ['null', '1', '"s"', '{"__proto__":{"x":1}}', '{"password":{"toString":1}}', `{"password":"${'a'.repeat(2000)}"}`]) {
      typedOnly(() => parseEnrollJson(Buffer.from(odd)), odd);
    }
  });

  test('EST Basic credentials and CSR bodies', () => {
    const r = rng(0x5eed3);
    const header = `Basic ${Buffer.from(`${generateNoticeId('request')}:${generateNoticeId('reference')}`).toString('base64')}`;
    assert.ok(parseBasicAuth(header));
    for (let i = 0; i < ROUNDS; i++) typedOnly(() => parseBasicAuth(mutate(Buffer.from(header), r).toString('latin1')), `basic round ${i}`);
    const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    // A real CSR to mutate: built by hand (empty subject) and signed, as the portal's script does.
    const spki = key.publicKey.export({ type: 'spki', format: 'der' });
    const info = sequence(integerFromUnsigned(Buffer.from([0])), sequence(), spki, Buffer.from([0xa0, 0]));
    const sig = sign('sha256', info, key.privateKey);
    const csr = sequence(info, sequence(oid('1.2.840.10045.4.3.2')), Buffer.concat([Buffer.from([0x03, sig.length + 1, 0]), sig]));
    assert.equal(parseCsr(estCsrDer(Buffer.from(csr.toString('base64')))).subject.length, 0);
    const b64 = Buffer.from(csr.toString('base64').replace(/.{64}/g, '$&\n'));
    for (let i = 0; i < ROUNDS; i++) {
      typedOnly(() => parseCsr(estCsrDer(mutate(b64, r))), `est b64 round ${i}`);
      typedOnly(() => parseCsr(estCsrDer(mutate(csr, r))), `est der round ${i}`);
    }
  });

  test('OCSP requests', () => {
    const r = rng(0x5eed4);
    const certId = sequence(sequence(oid('1.3.14.3.2.26'), nullValue()), octetString(createHash('sha1').update('n').digest()), octetString(createHash('sha1').update('k').digest()), integerFromUnsigned(Buffer.from('0123456789abcdef01', 'hex')));
    const nonce = sequence(oid('1.3.6.1.5.5.7.48.1.2'), octetString(octetString(Buffer.alloc(16, 7))));
    const request = sequence(sequence(sequence(sequence(certId)), contextExplicit(2, sequence(nonce))));
    const parsed = parseOcspRequest(request);
    assert.equal(parsed.certIds[0]!.serialHex, '0123456789abcdef01');
    assert.ok(parsed.nonceExtension?.equals(nonce));
    for (let i = 0; i < ROUNDS * 2; i++) {
      const m = mutate(request, r);
      try {
        parseOcspRequest(m);
      } catch (e) {
        assert.ok(e instanceof SekishoError && e.code === 'OCSP_REQUEST_MALFORMED', `ocsp round ${i}: ${String(e)}`);
      }
    }
  });
});

