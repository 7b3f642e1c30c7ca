import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CertificateAuthority } from './authority.js';
import { initAuthority } from './init.js';
import { CertificateIssuer } from './issuer.js';
import { decryptPrivateKey, encryptPrivateKey } from './key-file.js';
import { certificateToPem, encodeName, keyIdentifier, SoftwareSigner, type Signer } from '../pki/index.js';
import { CERTIFICATE_PROFILES } from '../policy/index.js';
import { SekishoError } from '../errors/index.js';
import { STORE_TARGETS, tempDir } from '../testing/stores.js';
import { needCommand, needPeer, run } from '../testing/peers.js';

const PASS = 'authority-test-passphrase';
const isCode = (code: string) => (e: unknown) => e instanceof SekishoError && e.code === code;

async function snapshot(ca: CertificateAuthority) {
  return JSON.stringify([await ca.listCertificates(), await ca.listFacilities(), await ca.audit.list()]);
}

for (const target of STORE_TARGETS) {
  describe(`certificate authority on ${target.name}`, () => {
    async function openCa(t: import('node:test').TestContext, keyType?: 'ecdsa-p384' | 'rsa-2048'): Promise<CertificateAuthority | undefined> {
      if (!needPeer(t, target.available, 'PostgreSQL (SEKISHO_TEST_POSTGRES_URL)')) return undefined;
      const url = await target.fresh();
      const home = join(tempDir(), 'home');
      await initAuthority({ home, passphrase: PASS, ...(url ? { db: url } : {}), ...(keyType ? { keyType } : {}), urls: { crl: 'http://127.0.0.1:8080/crl' } });
      const ca = await CertificateAuthority.open({ home });
      await ca.unlock(PASS);
      await ca.addFacility({ number: '0110113719', name: 'はこだてクリニック' }, 'test');
      return ca;
    }

    test('the subject comes from the registry, never from the request; openssl verifies the chain', async (t) => {
      if (!needCommand(t, 'openssl')) return;
      const ca = await openCa(t, target.name === 'sqlite' ? 'rsa-2048' : 'ecdsa-p384');
      if (!ca) return;
      try {
        const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
        const r = await ca.issue({ profile: 'facility', facilityNumber: '0110113719', publicKey, via: 'csr', actor: 'test' });
        assert.deepEqual(r.view.subject, [
          { type: 'C', value: 'JP' },
          { type: 'O', value: 'はこだてクリニック' },
          { type: 'CN', value: '0110113719' },
        ]);
        assert.deepEqual(r.view.extensions.crlDistributionPoints, ['http://127.0.0.1:8080/crl']);
        const dir = tempDir();
        writeFileSync(join(dir, 'leaf.pem'), certificateToPem(r.der));
        writeFileSync(join(dir, 'root.pem'), certificateToPem(ca.rootDer));
        writeFileSync(join(dir, 'issuing.pem'), certificateToPem(ca.issuingDer));
        const v = run('openssl', ['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'issuing.pem'), join(dir, 'leaf.pem')]);
        assert.equal(v.status, 0, v.stderr);
      } finally {
        await ca.close();
      }
    });

    test('50 concurrent issuances share commits, get distinct serials, and keep one audit chain', async (t) => {
      const ca = await openCa(t);
      if (!ca) return;
      try {
        const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
        const issued = await Promise.all(Array.from({ length: 50 }, () => ca.issue({ profile: 'facility', facilityNumber: '0110113719', publicKey, via: 'csr', actor: 'test' })));
        assert.equal(new Set(issued.map((i) => i.serial)).size, 50);
        const stored = await ca.listCertificates({ facilityNumber: '0110113719', status: 'issued' });
        assert.equal(stored.length, 50);
        assert.deepEqual((await ca.audit.verify()).problems, []);
      } finally {
        await ca.close();
      }
    });

    test('a suspended facility, a weak key and an unknown facility are refused and change nothing', async (t) => {
      const ca = await openCa(t);
      if (!ca) return;
      try {
        const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
        const good = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey;
        const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey;
        const before = await snapshot(ca);
        await assert.rejects(ca.issue({ profile: 'facility', facilityNumber: '0110113719', publicKey: weak, via: 'csr', actor: 't' }), isCode('KEY_TOO_WEAK'));
        await assert.rejects(ca.issue({ profile: 'facility', facilityNumber: '0110113719', publicKey: k1, via: 'csr', actor: 't' }), isCode('KEY_CURVE_UNSUPPORTED'));
        await assert.rejects(ca.issue({ profile: 'facility', facilityNumber: '1310000011', publicKey: good, via: 'csr', actor: 't' }), isCode('FACILITY_UNKNOWN'));
        await assert.rejects(ca.issue({ profile: 'facility', facilityNumber: '0110113719', publicKey: good, validityDays: 731, via: 'csr', actor: 't' }), isCode('VALIDITY_OUT_OF_RANGE'));
        assert.equal(await snapshot(ca), before);
        await ca.setFacilityStatus('0110113719', 'suspended', 't');
        const suspended = await snapshot(ca);
        await assert.rejects(ca.issue({ profile: 'facility', facilityNumber: '0110113719', publicKey: good, via: 'csr', actor: 't' }), isCode('FACILITY_SUSPENDED'));
        assert.equal(await snapshot(ca), suspended);
      } finally {
        await ca.close();
      }
    });

    test('a certificate that breaks its profile is never signed; within it, it is', async (t) => {
      const ca = await openCa(t);
      if (!ca) return;
      try {
        const issuer = new CertificateIssuer({ db: ca.db, audit: ca.audit });
        const rootKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
        const signer = new SoftwareSigner(rootKey.privateKey);
        const subject = [{ type: 'C', value: 'JP' }, { type: 'O', value: 'x' }, { type: 'CN', value: 'not-a-number' }];
        const identity = { signer, subjectDer: encodeName(subject), keyId: keyIdentifier(rootKey.publicKey), notAfter: new Date(Date.now() + 86_400_000 * 3650) };
        const now = new Date();
        const request = { profile: CERTIFICATE_PROFILES.facility, subject, publicKey: rootKey.publicKey, notBefore: now, notAfter: new Date(now.getTime() + 86_400_000 * 800), via: 'test', actor: 't' };
        const before = await snapshot(ca);
        await assert.rejects(issuer.issue(request, identity), (e: unknown) => isCode('CERTIFICATE_LINT_FAILED')(e) && /validity_cap/.test((e as Error).message) && /facility_subject/.test((e as Error).message));
        assert.equal(await snapshot(ca), before, 'nothing reserved, audited or stored');
        const ok = { ...request, facilityNumber: '0110113719', subject: [{ type: 'C', value: 'JP' }, { type: 'O', value: 'x' }, { type: 'CN', value: '0110113719' }], notAfter: new Date(now.getTime() + 86_400_000 * 30) };
        const issued = await issuer.issue(ok, identity);
        assert.equal((await ca.listCertificates({ status: 'issued' })).filter((c) => c.serial === issued.serial).length, 1, 'the same request within its profile is issued and stored');
      } finally {
        await ca.close();
      }
    });

    test('a signer that fails after the serial is reserved leaves a reserved serial and no certificate', async (t) => {
      const ca = await openCa(t);
      if (!ca) return;
      try {
        const real = new SoftwareSigner(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey);
        const broken: Signer = { publicKey: real.publicKey, keyType: real.keyType, algorithm: real.algorithm, sign: async () => Promise.reject(new Error('token removed')) };
        const issuer = new CertificateIssuer({ db: ca.db, audit: ca.audit });
        const subject = [{ type: 'C', value: 'JP' }, { type: 'O', value: 'x' }, { type: 'CN', value: '0110113719' }];
        const now = new Date();
        await assert.rejects(
          issuer.issue(
            { profile: CERTIFICATE_PROFILES.facility, subject, facilityNumber: '0110113719', publicKey: real.publicKey, notBefore: now, notAfter: new Date(now.getTime() + 86_400_000), via: 'test', actor: 't' },
            { signer: broken, subjectDer: encodeName(subject), keyId: keyIdentifier(real.publicKey), notAfter: new Date(now.getTime() + 86_400_000 * 10) },
          ),
          /token removed/,
        );
        const reserved = await ca.listCertificates({ status: 'reserved' });
        assert.equal(reserved.length, 1);
        assert.equal(reserved[0]!.der, undefined);
        const events = await ca.audit.list();
        assert.deepEqual(events.slice(-2).map((e) => [e.action, e.outcome]), [['certificate.signing', 'success'], ['certificate.sign-failed', 'majorFailure']], 'signing and its failure were audited; issued never was');
      } finally {
        await ca.close();
      }
    });
  });
}

test('CA key files: a wrong passphrase and an edited file are refused with their own codes', async () => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const text = await encryptPrivateKey(privateKey, 'right passphrase');
  await assert.rejects(decryptPrivateKey(text, 'wrong passphrase'), isCode('PASSPHRASE_WRONG'));
  const edited = JSON.parse(text) as { kdf: { N: number } };
  edited.kdf.N = 1 << 14;
  await assert.rejects(decryptPrivateKey(JSON.stringify(edited), 'right passphrase'), isCode('PASSPHRASE_WRONG'));
  await assert.rejects(decryptPrivateKey('{"not":"a key"}', 'right passphrase'), isCode('KEY_FILE_MALFORMED'));
  const back = await decryptPrivateKey(text, 'right passphrase');
  assert.ok(back.equals(privateKey));
  assert.ok(!text.includes(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString().split('\n')[1]!));
});

test('regression: a CA key file with a field missing, of the wrong type or cut short is KEY_FILE_MALFORMED ("restore it from backup"), never an internal failure or a wrong passphrase', async () => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const good = JSON.parse(await encryptPrivateKey(privateKey, 'right passphrase')) as Record<string, Record<string, unknown> | unknown>;
  type F = { kdf: Record<string, unknown>; cipher: Record<string, unknown>; ciphertext: unknown };
  const damage: [string, (f: F) => void][] = [
    ['no salt', (f) => delete f.kdf.salt],
    ['a numeric salt', (f) => (f.kdf.salt = 5)],
    ['an empty salt', (f) => (f.kdf.salt = '')],
    ['no IV', (f) => delete f.cipher.iv],
    ['an empty IV', (f) => (f.cipher.iv = '')],
    ['an IV cut short', (f) => (f.cipher.iv = (f.cipher.iv as string).slice(0, 8))],
    ['a tag that is an object', (f) => (f.cipher.tag = {})],
    ['a tag cut short', (f) => (f.cipher.tag = (f.cipher.tag as string).slice(0, 12))],
    ['a numeric ciphertext', (f) => (f.ciphertext = 7)],
    ['an empty ciphertext', (f) => (f.ciphertext = '')],
    ['a ciphertext that is not base64', (f) => (f.ciphertext = '!!not base64!!')],
    ['kdf null', (f) => ((f as unknown as Record<string, unknown>).kdf = null)],
  ];
  for (const [name, mutate] of damage) {
    const f = structuredClone(good) as unknown as F;
    mutate(f);
    await assert.rejects(decryptPrivateKey(JSON.stringify(f), 'right passphrase'), (e: unknown) => isCode('KEY_FILE_MALFORMED')(e) && /restore/.test((e as Error).message), name);
  }
  assert.ok((await decryptPrivateKey(JSON.stringify(good), 'right passphrase')).equals(privateKey));
});

test('init refuses an empty passphrase and a second init of the same home', async () => {
  const home = join(tempDir(), 'home');
  await assert.rejects(initAuthority({ home, passphrase: '' }), isCode('PASSPHRASE_EMPTY'));
  await initAuthority({ home, passphrase: PASS });
  await assert.rejects(initAuthority({ home, passphrase: PASS }), isCode('HOME_INITIALIZED'));
  const key = readFileSync(join(home, 'ca', 'issuing.key.json'));
  assert.ok(!key.includes('PRIVATE KEY'));
});

test('regression: a certificate nobody received whose revocation fails is named with the command that revokes it (the failure was swallowed, leaving it valid unseen); when the revocation works the cause is rethrown', async () => {
  const home = join(tempDir(), 'home');
  await initAuthority({ home, passphrase: PASS });
  const ca = await CertificateAuthority.open({ home });
  try {
    await ca.unlock(PASS);
    await ca.addFacility({ number: '0110113719', name: 'はこだてクリニック' }, 'test');
    const order = { profile: 'facility' as const, facilityNumber: '0110113719', keyType: 'ecdsa-p256' as const, via: 'test', actor: 'test' };
    const cause = new SekishoError('badRequest', 'HAND_OVER_FAILED', 'the hand-over failed');
    const first = await ca.issueWithNewKey(order);
    await assert.rejects(ca.revokeUnreceived(first.serial, 'test', cause), (e) => e === cause);
    assert.equal((await ca.certificate(first.serial))?.status, 'revoked');
    const second = await ca.issueWithNewKey(order);
    const revoke = ca.revoke.bind(ca);
    ca.revoke = async () => {
      throw new SekishoError('unavailable', 'STORE_UNAVAILABLE', 'the database is away');
    };
    await assert.rejects(ca.revokeUnreceived(second.serial, 'test', cause), (e: SekishoError) => {
      assert.equal(e.code, 'CERTIFICATE_NOT_REVOKED');
      assert.match(e.message, new RegExp(`sekisho cert revoke ${second.serial}`));
      assert.match(e.message, /the hand-over failed.*the database is away/);
      return true;
    });
    ca.revoke = revoke;
    assert.equal((await ca.certificate(second.serial))?.status, 'issued', 'still valid: which is why the error names it');
  } finally {
    await ca.close();
  }
});
