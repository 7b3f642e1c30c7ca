import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { isSekishoError } from '../errors/index.js';
import { formatPkcs11Uri, parsePkcs11Uri, redactPkcs11Uri, type Pkcs11Uri } from './uri.js';

const GOOD: [string, string, Pkcs11Uri][] = [
  ['empty path (matches everything)', 'pkcs11:', {}],
  ['RFC 7512 §3 example: object and type', 'pkcs11:object=my-pubkey;type=public', { object: 'my-pubkey', type: 'public' }],
  ['RFC 7512 §3 example: token, id bytes', 'pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snakeoil%20Corp.;model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial=', {
    token: 'The Software PKCS#11 Softtoken', manufacturer: 'Snakeoil Corp.', model: '1.0', object: 'my-certificate', type: 'cert', id: Buffer.from('69953e5cf4bdec91', 'hex'), serial: '',
  }],
  ['pin-value in the query', 'pkcs11:token=sekisho;object=ca-issuing;type=private?pin-value=1234', { token: 'sekisho', object: 'ca-issuing', type: 'private', pinValue: '1234' }],
  ['module-path with slashes in the query', 'pkcs11:token=t?module-path=/usr/lib/softhsm/libsofthsm2.so', { token: 't', modulePath: '/usr/lib/softhsm/libsofthsm2.so' }],
  ['UTF-8 label', 'pkcs11:token=%E9%96%A2%E6%89%80', { token: '関所' }],
  ['slot-id and library-version', 'pkcs11:slot-id=992587863;library-version=2.6', { slotId: 992587863, libraryVersion: '2.6' }],
  ['vendor attribute kept', 'pkcs11:x-vendor_attr=abc;token=t', { vendor: { 'x-vendor_attr': 'abc' }, token: 't' }],
  ['& allowed in a path value', 'pkcs11:object=a&b', { object: 'a&b' }],
  ['attribute names are case-insensitive', 'PKCS11:TOKEN=t', { token: 't' }],
];

for (const [name, text, expected] of GOOD) {
  test(`parsePkcs11Uri reads ${name}`, () => {
    assert.deepEqual(parsePkcs11Uri(text), expected);
  });
}

const BAD: [string, string][] = [
  ['another scheme', 'https://example.org'],
  ['no value separator', 'pkcs11:token'],
  ['an unknown standard attribute', 'pkcs11:colour=blue'],
  ['a query attribute in the path', 'pkcs11:pin-value=1234'],
  ['a path attribute in the query', 'pkcs11:?token=t'],
  ['a repeated attribute', 'pkcs11:token=a;token=b'],
  ['an unknown object type', 'pkcs11:type=wallet'],
  ['a space not percent-encoded', 'pkcs11:token=a b'],
  ['a broken percent escape', 'pkcs11:token=%4'],
  ['invalid UTF-8 in a text value', 'pkcs11:token=%FF%FE'],
  ['a non-numeric slot-id', 'pkcs11:slot-id=one'],
  ['both pin-source and pin-value', 'pkcs11:token=t?pin-source=file:/p&pin-value=1'],
  ['a question mark in the path', 'pkcs11:token=a?b?c=d'],
  ['an empty attribute name', 'pkcs11:=x'],
];

for (const [name, text] of BAD) {
  test(`parsePkcs11Uri refuses ${name} with PKCS11_URI_INVALID`, () => {
    assert.throws(() => parsePkcs11Uri(text), (e: unknown) => isSekishoError(e) && e.code === 'PKCS11_URI_INVALID');
  });
}

test('formatPkcs11Uri percent-encodes every reserved byte and round-trips', () => {
  const u: Pkcs11Uri = { token: 'My Token; #1', object: '証明書/鍵?', type: 'private', id: Buffer.from([0, 1, 0xfe, 0x3b]), slotId: 7, pinValue: 'p&n=1', modulePath: '/usr/lib/x.so' };
  const text = formatPkcs11Uri(u);
  assert.match(text, /^pkcs11:token=My%20Token%3B%20%231;object=/);
  assert.deepEqual(parsePkcs11Uri(text), u);
});

test('redactPkcs11Uri drops the PIN', () => {
  assert.equal(redactPkcs11Uri(parsePkcs11Uri('pkcs11:token=t;object=k?pin-value=secret')), 'pkcs11:token=t;object=k');
});

test('fuzz: random and mutated URIs parse or fail with PKCS11_URI_INVALID, and what parses round-trips', () => {
  const seeds = [...GOOD.map((g) => g[1]), ...BAD.map((b) => b[1])];
  const alphabet = 'pkcs11:;?&=%/abcxyz-_.~!$()*+,@[]|#\u00e9\u0000 09AFaf';
  let parsed = 0;
  for (let i = 0; i < 20000; i++) {
    const r = randomBytes(8);
    let s = seeds[r[0]! % seeds.length]!;
    const edits = 1 + (r[1]! % 4);
    for (let k = 0; k < edits; k++) {
      const at = randomBytes(2).readUInt16LE() % (s.length + 1);
      const c = alphabet[randomBytes(1)[0]! % alphabet.length]!;
      const op = randomBytes(1)[0]! % 3;
      s = op === 0 ? s.slice(0, at) + c + s.slice(at) : op === 1 ? s.slice(0, at) + s.slice(at + 1) : s.slice(0, at) + c + s.slice(at + 1);
    }
    let u: Pkcs11Uri;
    try {
      u = parsePkcs11Uri(s);
    } catch (e) {
      assert.ok(isSekishoError(e) && e.code === 'PKCS11_URI_INVALID', `unexpected ${String(e)} for ${JSON.stringify(s)}`);
      continue;
    }
    parsed++;
    assert.deepEqual(parsePkcs11Uri(formatPkcs11Uri(u)), u, `round trip of ${JSON.stringify(s)}`);
  }
  assert.ok(parsed > 500, `only ${parsed} mutated URIs parsed; the fuzz is not exercising the success path`);
});
