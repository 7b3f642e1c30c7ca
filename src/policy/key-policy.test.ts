import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { subjectKeyProblem } from './key-policy.js';
import { bigintToUnsigned, integerFromUnsigned, nullValue, oid, sequence, bitString, EC_PUBLIC_KEY_OID, RSA_ENCRYPTION_OID } from '../pki/index.js';
import { needCommand, run } from '../testing/peers.js';
import { tempDir } from '../testing/stores.js';

/** The DER SubjectPublicKeyInfo of a key openssl makes (private key file → `pkey -pubout -outform DER`). */
function opensslSpki(dir: string, name: string, make: string[], pubArgs: string[] = []): Buffer {
  const key = join(dir, `${name}.key`);
  const r = run('openssl', [...make, '-out', key]);
  assert.equal(r.status, 0, r.stderr);
  const der = join(dir, `${name}.der`);
  const p = run('openssl', ['pkey', '-in', key, '-pubout', '-outform', 'DER', '-out', der, ...pubArgs]);
  assert.equal(p.status, 0, p.stderr);
  return readFileSync(der);
}

const rsaSpki = (n: bigint, e: bigint, params: Buffer | null = nullValue()) =>
  sequence(sequence(oid(RSA_ENCRYPTION_OID), ...(params ? [params] : [])), bitString(sequence(integerFromUnsigned(bigintToUnsigned(n)), integerFromUnsigned(bigintToUnsigned(e)))));

test('only the SubjectPublicKeyInfo forms RFC 5480 / RFC 8017 and the key policy allow pass (regression: explicit EC parameters and RSA e=3 were certified)', (t) => {
  if (!needCommand(t, 'openssl')) return;
  const dir = tempDir();
  const genpkey = (...opts: string[]) => ['genpkey', ...opts.flatMap((o, i) => (i === 0 ? ['-algorithm', o] : ['-pkeyopt', o]))];
  const p256 = opensslSpki(dir, 'p256', genpkey('EC', 'ec_paramgen_curve:P-256'));
  const rsa = opensslSpki(dir, 'rsa', genpkey('RSA', 'rsa_keygen_bits:2048'));
  const rsaView = createPublicKey({ key: rsa, format: 'der', type: 'spki' }).export({ format: 'jwk' });
  const n = BigInt(`0x${Buffer.from(rsaView.n!, 'base64url').toString('hex')}`);
  const offCurve = Buffer.from(p256);
  offCurve.writeUInt8(offCurve.at(-1)! ^ 1, offCurve.length - 1);

  const cases: { name: string; spki: () => Buffer; code: string | undefined }[] = [
    { name: 'EC P-256, named curve', spki: () => p256, code: undefined },
    { name: 'EC P-384, named curve', spki: () => opensslSpki(dir, 'p384', genpkey('EC', 'ec_paramgen_curve:P-384')), code: undefined },
    { name: 'RSA-2048, e = 65537', spki: () => rsa, code: undefined },
    { name: 'RSA-3072, e = 65539 (odd, within the BR range)', spki: () => opensslSpki(dir, 'rsa3072', genpkey('RSA', 'rsa_keygen_bits:3072', 'rsa_keygen_pubexp:65539')), code: undefined },
    { name: 'EC P-256 with explicit parameters (ecparam -param_enc explicit)', spki: () => opensslSpki(dir, 'explicit', ['ecparam', '-name', 'prime256v1', '-param_enc', 'explicit', '-genkey', '-noout']), code: 'KEY_EC_EXPLICIT_PARAMETERS' },
    { name: 'EC P-384 with explicit parameters', spki: () => opensslSpki(dir, 'explicit384', ['ecparam', '-name', 'secp384r1', '-param_enc', 'explicit', '-genkey', '-noout']), code: 'KEY_EC_EXPLICIT_PARAMETERS' },
    { name: 'EC with implicitCurve (NULL) parameters', spki: () => sequence(sequence(oid(EC_PUBLIC_KEY_OID), nullValue()), bitString(Buffer.from(p256.subarray(-65)))), code: 'KEY_EC_EXPLICIT_PARAMETERS' },
    { name: 'EC P-256, compressed point', spki: () => opensslSpki(dir, 'compressed', genpkey('EC', 'ec_paramgen_curve:P-256'), ['-ec_conv_form', 'compressed']), code: 'KEY_EC_POINT_INVALID' },
    { name: 'EC P-256, point off the curve', spki: () => offCurve, code: 'KEY_EC_POINT_INVALID' },
    { name: 'EC P-521 (not in the policy)', spki: () => opensslSpki(dir, 'p521', genpkey('EC', 'ec_paramgen_curve:P-521')), code: 'KEY_CURVE_UNSUPPORTED' },
    { name: 'EC secp256k1', spki: () => opensslSpki(dir, 'k1', genpkey('EC', 'ec_paramgen_curve:secp256k1')), code: 'KEY_CURVE_UNSUPPORTED' },
    { name: 'RSA-2048 with e = 3 (genpkey rsa_keygen_pubexp:3)', spki: () => opensslSpki(dir, 'e3', genpkey('RSA', 'rsa_keygen_bits:2048', 'rsa_keygen_pubexp:3')), code: 'KEY_RSA_EXPONENT' },
    { name: 'RSA with e = 65536 (even)', spki: () => rsaSpki(n, 65536n), code: 'KEY_RSA_EXPONENT' },
    { name: 'RSA with e = 2^256 + 1 (above the BR bound)', spki: () => rsaSpki(n, 2n ** 256n + 1n), code: 'KEY_RSA_EXPONENT' },
    { name: 'RSA with absent parameters', spki: () => rsaSpki(n, 65537n, null), code: 'KEY_RSA_PARAMETERS' },
    { name: 'RSA with an even modulus', spki: () => rsaSpki(n + 1n, 65537n), code: 'KEY_RSA_MODULUS' },
    { name: 'RSA with a modulus divisible by 3', spki: () => rsaSpki(n * 3n, 65537n), code: 'KEY_RSA_MODULUS' },
    { name: 'RSA-1024', spki: () => opensslSpki(dir, 'rsa1024', genpkey('RSA', 'rsa_keygen_bits:1024')), code: 'KEY_TOO_WEAK' },
    { name: 'RSASSA-PSS key', spki: () => opensslSpki(dir, 'pss', genpkey('RSA-PSS', 'rsa_keygen_bits:2048')), code: 'KEY_TYPE_UNSUPPORTED' },
    { name: 'Ed25519', spki: () => opensslSpki(dir, 'ed', ['genpkey', '-algorithm', 'ED25519']), code: 'KEY_TYPE_UNSUPPORTED' },
    { name: 'trailing bytes after the SPKI', spki: () => Buffer.concat([p256, Buffer.from([0])]), code: 'KEY_MALFORMED' },
  ];
  for (const c of cases) {
    const problem = subjectKeyProblem(c.spki());
    assert.equal(problem?.code, c.code, `${c.name}: ${problem?.message ?? 'accepted'}`);
  }
});
