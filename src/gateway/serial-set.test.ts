/**
 * The gateway's revocation sets (SerialSet): the same answers as a Set of the
 * serials' normalized hex, for any mix of adds and lookups, with serials of
 * 1–25 bytes, leading zeros, either case; and a CRL's serials loaded from its
 * DER match what OpenSSL lists in it.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MAX_SERIAL_BYTES, SerialSet } from './serial-set.js';
import { serialKey } from './serial-key.js';
import { CrlRevocationSource } from './revocation.js';
import { ClientVerifier } from './client-verifier.js';
import { buildCrl, SoftwareSigner, subjectNameDer, type RevokedEntry } from '../pki/index.js';
import { needCommand } from '../testing/peers.js';
import { tempDir } from '../testing/stores.js';
import { seededRandom } from '../testing/seeded-random.js';

/** The form every revocation set used before (serialKey of Node's serialNumber). */
const normal = (hex: string) => serialKey(hex.length % 2 ? `0${hex}` : hex);

describe('SerialSet', () => {
  test('answers as a Set of normalized hex serials does (seeded random adds and lookups)', () => {
    for (const seed of [1, 7, 2026, 99991]) {
      const next = seededRandom(seed);
      const set = new SerialSet();
      const reference = new Set<string>();
      const known: string[] = [];
      const randomSerial = () => {
        const len = 1 + next(25);
        const bytes = Buffer.alloc(len);
        for (let i = 0; i < len; i++) bytes[i] = next(4) === 0 ? 0 : next(256);
        let hex = bytes.toString('hex');
        if (next(2)) hex = hex.toUpperCase();
        return hex;
      };
      for (let i = 0; i < 20_000; i++) {
        const op = next(3);
        // Half the lookups are of serials added before, in a different case or with leading zeros.
        const hex = op === 2 && known.length && next(2) ? (next(2) ? `00${known[next(known.length)]!}` : known[next(known.length)]!.toUpperCase()) : randomSerial();
        if (op === 0) {
          const fresh = !reference.has(normal(hex));
          assert.equal(set.add(hex), fresh, `seed ${seed}: add ${hex}`);
          reference.add(normal(hex));
          known.push(hex);
        } else {
          assert.equal(set.has(hex), reference.has(normal(hex)), `seed ${seed}: has ${hex}`);
        }
      }
      assert.equal(set.size, reference.size);
      assert.deepEqual(new Set(set), reference, 'iteration gives every serial in the normalized form');
    }
  });

  test('bytes and hex name the same serial: leading zero bytes (DER sign octet) are not part of it', () => {
    const set = new SerialSet();
    const der = Buffer.from([0x02, 0x03, 0x00, 0x8f, 0x01]);
    assert.equal(set.addBytes(der, 2, 5), true);
    assert.equal(set.has('8f01'), true);
    assert.equal(set.has('008F01'), true);
    assert.equal(set.add('0000008f01'), false, 'the same serial again is not new');
    assert.equal(set.hasBytes(Buffer.from([0x8f, 0x01]), 0, 2), true);
    assert.equal(set.has('8f02'), false);
    // Zero is a serial too (one byte), not an empty one.
    assert.equal(set.add('00'), true);
    assert.equal(set.has('0'), true);
    assert.equal(set.has('0000'), true);
    assert.deepEqual([...set], ['8f01', '00']);
  });

  test('strings that are no hex serial are never found, and are refused on add', () => {
    const set = new SerialSet();
    set.add('abcdef');
    for (const bad of ['', 'xyz', 'ab cd', 'abcdeg', '-abcdef', '0x1234', 'ａｂ', 'f'.repeat(2 * MAX_SERIAL_BYTES + 2)]) {
      assert.equal(set.has(bad), false, JSON.stringify(bad));
      assert.throws(() => set.add(bad), RangeError, JSON.stringify(bad));
    }
    assert.equal(set.size, 1);
  });

  test('missingFrom lists what a refresh newly revoked, and nothing on a set that already had it all', () => {
    const before = new SerialSet();
    for (const s of ['01', '02', '03']) before.add(s);
    const after = new SerialSet();
    for (const s of ['02', '03', '04', 'AA']) after.add(s);
    assert.deepEqual(after.missingFrom(before), ['04', 'aa']);
    assert.deepEqual(after.missingFrom(undefined), ['02', '03', '04', 'aa']);
    assert.deepEqual(before.missingFrom(before), []);
  });

  test('grows from empty to 200,000 serials and is trimmed, with every one still found', () => {
    const set = new SerialSet();
    const b = Buffer.alloc(9);
    for (let i = 0; i < 200_000; i++) {
      b.writeUInt32BE(i, 5);
      b[0] = 0x40;
      assert.equal(set.addBytes(b, 0, 9), true);
    }
    const grown = set.byteLength;
    set.trim();
    assert.ok(set.byteLength < grown, 'trim gives back the unused tail of the arena');
    for (let i = 0; i < 200_000; i += 997) {
      b.writeUInt32BE(i, 5);
      assert.equal(set.hasBytes(b, 0, 9), true, `serial ${i}`);
    }
    b.writeUInt32BE(200_001, 5);
    assert.equal(set.hasBytes(b, 0, 9), false);
    assert.equal(set.size, 200_000);
    // Compact: 10 bytes per nine-byte serial in the trimmed arena, at most 16 in the table (load 1/4–1/2, 4-byte slots).
    assert.ok(set.byteLength <= 200_000 * 26, `${set.byteLength} bytes for 200,000 serials`);
    set.addBytes(Buffer.from([0x41]), 0, 1);
    assert.equal(set.has('41'), true, 'a trimmed set still grows');
  });
});

describe('CrlRevocationSource on SerialSet', () => {
  test('holds exactly the serials OpenSSL lists in the CRL, and a newer CRL reports exactly the added ones', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const dir = tempDir('sekisho-serial-set-');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.pem'), '-subj', '/O=serial-set test/CN=Test CA', '-days', '2'], { stdio: 'ignore' });
    const ca = new X509Certificate(readFileSync(join(dir, 'ca.pem')));
    const signer = new SoftwareSigner(createPrivateKey(readFileSync(join(dir, 'ca.key'))));
    const next = seededRandom(4242);
    // Serials of 1–19 bytes (20 octets at most with the sign octet, RFC 5280), many with the top bit set (a 00 sign octet in DER) and some with leading zero bytes.
    const entries: RevokedEntry[] = [];
    for (let i = 0; i < 3000; i++) {
      const serial = Buffer.alloc(1 + next(19));
      for (let k = 0; k < serial.length; k++) serial[k] = k === 0 && next(5) === 0 ? 0 : next(256);
      if (serial.every((b) => b === 0)) serial[serial.length - 1] = 1;
      entries.push({ serial, revokedAt: new Date(Date.now() - next(1e9)) });
    }
    const crl = (list: RevokedEntry[]) =>
      buildCrl({ issuer: subjectNameDer(ca.raw), signer, authorityKeyIdentifier: Buffer.alloc(20, 7), thisUpdate: new Date(), nextUpdate: new Date(Date.now() + 86_400_000), crlNumber: BigInt(list.length), entries: list });
    const file = join(dir, 'test.crl');
    writeFileSync(file, await crl(entries.slice(0, 2500)));
    const listed = (path: string) =>
      new Set(
        [...execFileSync('openssl', ['crl', '-inform', 'DER', '-in', path, '-noout', '-text'], { encoding: 'utf8' }).matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => serialKey(m[1]!)),
      );
    const first = listed(file);
    const source = new CrlRevocationSource([file], [ca], 3_600_000);
    await source.start();
    try {
      assert.equal(source.status(new Date()).entries, first.size);
      for (const s of first) assert.equal(source.isRevoked(ca.fingerprint256, s), true, `listed by OpenSSL: ${s}`);
      // As the gateway asks: Node's serialNumber of a certificate (uppercase, maybe a 00 sign octet) through serialKey.
      for (const e of entries.slice(2500)) {
        const key = serialKey(e.serial.toString('hex').toUpperCase());
        assert.equal(source.isRevoked(ca.fingerprint256, key), first.has(key), key);
      }
      assert.equal(source.isRevoked('another CA', [...first][0]!), false, 'serials are per issuing CA');

      const told: string[] = [];
      source.onRevoked((_issuer, serials) => told.push(...serials));
      const newer = join(dir, 'newer.crl');
      writeFileSync(newer, await crl(entries));
      source.load(file, readFileSync(newer));
      const all = listed(newer);
      assert.deepEqual(new Set(told), new Set([...all].filter((s) => !first.has(s))), 'a refresh reports the newly listed serials, each once');
      assert.equal(source.status(new Date()).entries, all.size);
    } finally {
      source.close();
    }
  });
});

describe('CrlRevocationSource: a CA\'s lists only move forward', () => {
  test('an older CRL (lower cRLNumber, or the same number signed earlier) never replaces the one in force, from the same location or a mirror; it is reported as superseded, and a newer one applies again', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const dir = tempDir('sekisho-crl-order-');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.pem'), '-subj', '/O=crl-order test/CN=Test CA', '-days', '2'], { stdio: 'ignore' });
    const ca = new X509Certificate(readFileSync(join(dir, 'ca.pem')));
    const signer = new SoftwareSigner(createPrivateKey(readFileSync(join(dir, 'ca.key'))));
    const hour = 3_600_000;
    const t0 = Math.floor((Date.now() - 10 * hour) / 1000) * 1000; // CRL times are to the second
    const crl = (n: bigint, at: number, serials: string[]) =>
      buildCrl({ issuer: subjectNameDer(ca.raw), signer, authorityKeyIdentifier: Buffer.alloc(20, 7), crlNumber: n, thisUpdate: new Date(at), nextUpdate: new Date(at + 48 * hour), entries: serials.map((s) => ({ serial: Buffer.from(s, 'hex'), revokedAt: new Date(at) })) });
    const v4 = await crl(4n, t0, ['0a']);
    const v5 = await crl(5n, t0 + hour, ['0a', '0b']); // 0b revoked in between
    const v5earlier = await crl(5n, t0 + hour / 2, ['0a']); // the same number, signed earlier, without 0b
    const v6 = await crl(6n, t0 + 2 * hour, ['0a', '0b', '0c']);
    const source = new CrlRevocationSource(['primary', 'mirror'], [ca]);
    const told: string[] = [];
    source.onRevoked((_issuer, serials) => told.push(...serials));
    const revoked = (s: string) => source.isRevoked(ca.fingerprint256, s);

    source.load('primary', v4);
    source.load('primary', v5);
    assert.ok(revoked('0b'));
    // Replayed on the way, or a mirror behind: nothing is un-revoked, and each is reported.
    for (const [loc, older] of [['primary', v4], ['mirror', v4], ['mirror', v5earlier]] as const) {
      source.load(loc, older);
      assert.ok(revoked('0b'), `${loc}: the older list did not un-revoke 0b`);
      const st = source.status(new Date());
      assert.equal(st.entries, 2);
      assert.equal(st.nextUpdate?.getTime(), t0 + hour + 48 * hour, 'staleness is judged by the list in force');
      assert.deepEqual(st.superseded?.find((s) => s.location === loc)?.inForce, { crlNumber: '5', thisUpdate: new Date(t0 + hour) });
    }
    assert.equal(source.status(new Date()).stale, false, 'both locations delivered a verified list; the one in force is current');
    // The same list again changes nothing; a newer one applies and reports what it adds.
    source.load('primary', v5);
    source.load('mirror', v6);
    assert.ok(revoked('0c'));
    assert.deepEqual(told, ['0b', '0c']);
    const after = source.status(new Date());
    assert.deepEqual(after.superseded?.map((s) => s.location), ['primary'], 'the mirror caught up; the primary is now the one behind');
    source.close();
  });
});

describe('serial keys: Node\'s serialNumber and a CRL entry name one serial', () => {
  test('serialKey: lowercase, two digits a byte, no leading zero bytes (zero is "00"); a negative serial as its two\'s complement', () => {
    const cases: [string, string][] = [
      ['0', '00'],
      ['00', '00'],
      ['ABC', '0abc'],
      ['00FF12', 'ff12'],
      ['8F01', '8f01'],
      ['-01', 'ff'],
      ['-80', '80'],
      ['-81', 'ff7f'],
      ['-FF', 'ff01'],
      ['-1234', 'edcc'],
    ];
    for (const [node, key] of cases) assert.equal(serialKey(node), key, node);
    // What the sets report (missingFrom, iteration) is the same form, so a live connection is found by it.
    const set = new SerialSet();
    set.addBytes(Buffer.from([0x00]), 0, 1);
    set.addBytes(Buffer.from([0xed, 0xcc]), 0, 2);
    assert.deepEqual([...set], [serialKey('0'), serialKey('-1234')]);
  });

  test('a certificate with a negative serial (from a non-conforming CA the gateway trusts) that its CRL lists is refused as REVOKED, as openssl verify -crl_check says', async (t) => {
    if (!needCommand(t, 'openssl')) return;
    const dir = tempDir('sekisho-negative-serial-');
    const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    writeFileSync(
      join(dir, 'ca.cnf'),
      [
        '[ca]', 'default_ca = d', '[d]', 'database = ./index.txt', 'crlnumber = ./crlnumber', 'default_md = sha256', 'default_crl_days = 7', 'certificate = ./ca.pem', 'private_key = ./ca.key',
        '[v3_ca]', 'basicConstraints = critical, CA:TRUE', 'keyUsage = critical, keyCertSign, cRLSign', 'subjectKeyIdentifier = hash',
        '[leaf]', 'basicConstraints = critical, CA:FALSE', 'keyUsage = critical, digitalSignature', 'extendedKeyUsage = clientAuth', 'authorityKeyIdentifier = keyid', '',
      ].join('\n'),
    );
    run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', '/C=JP/O=Prefecture/CN=Prefectural CA', '-days', '30', '-config', 'ca.cnf', '-extensions', 'v3_ca']);
    run(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/C=JP/O=Clinic/CN=0110113719']);
    run(['x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', '-0x1234', '-days', '10', '-sha256', '-extfile', 'ca.cnf', '-extensions', 'leaf', '-out', 'leaf.pem']);
    writeFileSync(join(dir, 'crlnumber'), '01\n');
    writeFileSync(join(dir, 'index.txt'), 'R\t301231000000Z\t250101000000Z\t-1234\tunknown\t/C=JP/O=Clinic/CN=0110113719\n');
    run(['ca', '-config', 'ca.cnf', '-gencrl', '-out', 'crl.pem']);
    const openssl = spawnSync('openssl', ['verify', '-crl_check', '-CAfile', 'ca.pem', '-CRLfile', 'crl.pem', 'leaf.pem'], { cwd: dir, encoding: 'utf8' });
    assert.match(openssl.stdout + openssl.stderr, /certificate revoked/, 'openssl reads the CRL as revoking the certificate');

    const ca = new X509Certificate(readFileSync(join(dir, 'ca.pem')));
    const leaf = new X509Certificate(readFileSync(join(dir, 'leaf.pem')));
    assert.equal(leaf.serialNumber, '-1234', 'Node prints the negative serial with a sign');
    const crl = new CrlRevocationSource([], [ca]);
    crl.load('prefectural.crl', readFileSync(join(dir, 'crl.pem')));
    assert.equal(crl.status(new Date()).entries, 1);
    const verifier = new ClientVerifier({ anchors: [ca], policy: { exceptions: [] }, revocation: [crl], revocationUsable: () => true });
    const verdict = verifier.verify(leaf);
    assert.equal(verdict.ok ? 'accepted' : verdict.reason, 'REVOKED');
    crl.close();
  });
});
