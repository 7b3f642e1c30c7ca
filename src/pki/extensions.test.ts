import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AsnConvert } from '@peculiar/asn1-schema';
import { AuthorityKeyIdentifier, GeneralName, GeneralNames, KeyIdentifier, SubjectKeyIdentifier } from '@peculiar/asn1-x509';
import { contextPrimitive, octetString, sequence, tlv } from './der.js';
import { encodeExtensions, EXTENSION_OIDS, readExtensions, splitExtensions, type RawExtension } from './extensions.js';

const ski = (value: Buffer): RawExtension => ({ oid: EXTENSION_OIDS.subjectKeyIdentifier, critical: false, value });
const aki = (value: Buffer): RawExtension => ({ oid: EXTENSION_OIDS.authorityKeyIdentifier, critical: false, value });
const id = Buffer.from('00112233445566778899aabbccddeeff01234567', 'hex');

describe('extensions read back', () => {
  test('the key identifiers read directly equal what the schema parser reads, for every shape (regression: per-certificate schema parsing)', () => {
    const shapes = [
      { name: 'SKI, 20 bytes', ext: ski(octetString(id)), expect: { subjectKeyIdentifier: id } },
      { name: 'SKI, empty', ext: ski(octetString(Buffer.alloc(0))), expect: { subjectKeyIdentifier: Buffer.alloc(0) } },
      { name: 'SKI, 200 bytes (long-form length: schema path)', ext: ski(octetString(Buffer.alloc(200, 9))), expect: { subjectKeyIdentifier: Buffer.alloc(200, 9) } },
      { name: 'AKI, keyIdentifier only', ext: aki(sequence(contextPrimitive(0, id))), expect: { authorityKeyIdentifier: id } },
      {
        name: 'AKI with issuer and serial (schema path)',
        ext: aki(Buffer.from(AsnConvert.serialize(new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(id), authorityCertIssuer: new GeneralNames([new GeneralName({ dNSName: 'ca.example.jp' })]), authorityCertSerialNumber: new Uint8Array([1, 2]).buffer })))),
        expect: { authorityKeyIdentifier: id },
      },
      { name: 'AKI without keyIdentifier (schema path)', ext: aki(sequence()), expect: {} },
    ];
    for (const s of shapes) {
      const { present: _p, ...values } = readExtensions([s.ext]);
      assert.deepEqual(values, s.expect, s.name);
    }
  });

  test('a key identifier with bytes after it, or of another type, is left to the schema parser (reads as before, or is refused as before)', () => {
    const schema = (e: RawExtension) => {
      try {
        return e.oid === EXTENSION_OIDS.subjectKeyIdentifier
          ? { subjectKeyIdentifier: Buffer.from(AsnConvert.parse(e.value, SubjectKeyIdentifier).buffer) }
          : { authorityKeyIdentifier: Buffer.from(AsnConvert.parse(e.value, AuthorityKeyIdentifier).keyIdentifier!.buffer) };
      } catch {
        return 'refused';
      }
    };
    const direct = (e: RawExtension) => {
      try {
        const { present: _p, ...v } = readExtensions([e]);
        return v;
      } catch {
        return 'refused';
      }
    };
    for (const bad of [ski(Buffer.concat([octetString(id), Buffer.from([0])])), ski(tlv(0x03, id)), aki(Buffer.concat([sequence(contextPrimitive(0, id)), Buffer.from([0])])), aki(sequence(contextPrimitive(0, id), Buffer.from([0x82, 0x01, 0x01])))]) {
      assert.deepEqual(direct(bad), schema(bad), bad.value.toString('hex'));
    }
  });

  test('views of the same cached extensions never share their arrays or objects', () => {
    const der = encodeExtensions({ basicConstraints: { ca: false }, keyUsage: ['digitalSignature'], extendedKeyUsage: ['clientAuth'], crlDistributionPoints: ['http://ca.example.jp/crl'], ocspUrls: ['http://ca.example.jp/ocsp'] });
    const a = readExtensions(splitExtensions(der));
    const b = readExtensions(splitExtensions(der));
    a.keyUsage!.push('keyCertSign');
    a.crlDistributionPoints!.length = 0;
    a.basicConstraints!.ca = true;
    a.ocspUrls!.pop();
    const c = readExtensions(splitExtensions(der));
    for (const v of [b, c]) {
      assert.deepEqual(v.keyUsage, ['digitalSignature']);
      assert.deepEqual(v.crlDistributionPoints, ['http://ca.example.jp/crl']);
      assert.deepEqual(v.basicConstraints, { ca: false });
      assert.deepEqual(v.ocspUrls, ['http://ca.example.jp/ocsp']);
      assert.deepEqual(v.extendedKeyUsage, ['clientAuth']);
    }
  });
});
