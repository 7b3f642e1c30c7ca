import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import type { Worker } from 'node:worker_threads';
import { CertificateAuthority, issuanceWorkerCount } from './authority.js';
import { initAuthority } from './init.js';
import { IssuancePool, type PooledDraft } from './issuance-pool.js';
import type { FromWorker } from './issuance-protocol.js';
import { buildCsr, encodeName, keyIdentifier, SoftwareSigner } from '../pki/index.js';
import { CERTIFICATE_PROFILES, issuanceNotBefore } from '../policy/index.js';
import { SekishoError } from '../errors/index.js';
import { tempDir } from '../testing/stores.js';
import { GroupCommit, type Database, type SqlExecutor } from '../store/index.js';

const PASS = 'issuance-pool-test-passphrase';
const FACILITY = { number: '0110113719', name: 'はこだてクリニック' };
const isCode = (code: string) => (e: unknown) => e instanceof SekishoError && e.code === code;

async function csrFor(cn: string): Promise<{ der: Buffer; publicKey: KeyObject }> {
  const pair = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const der = await buildCsr(encodeName([{ type: 'CN', value: cn }]), new SoftwareSigner(pair.privateKey));
  return { der, publicKey: pair.publicKey };
}

async function openCa(workers: number | 'cores' = 2): Promise<CertificateAuthority> {
  const home = join(tempDir(), 'home');
  await initAuthority({ home, passphrase: PASS });
  const ca = await CertificateAuthority.open({ home, issuanceWorkers: workers });
  await ca.unlock(PASS);
  await ca.addFacility(FACILITY, 'test');
  return ca;
}

async function state(ca: CertificateAuthority) {
  return JSON.stringify([await ca.listCertificates(), await ca.audit.list()]);
}

/** A pool of its own issuer (a throwaway issuing key), for the token tests that talk to workers directly. */
async function ownPool(workers = 2): Promise<IssuancePool> {
  const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const subject = [{ type: 'C', value: 'JP' }, { type: 'O', value: 'Pool Test' }, { type: 'CN', value: 'Pool Test Issuing CA' }];
  return IssuancePool.start({
    key: key.privateKey,
    issuer: { algorithm: 'ecdsa-with-SHA256', subjectDer: encodeName(subject), keyId: keyIdentifier(key.publicKey), notAfter: new Date(Date.now() + 3650 * 86_400_000) },
    workers,
  });
}

function facilityRequest() {
  const notBefore = issuanceNotBefore(new Date());
  return {
    profile: CERTIFICATE_PROFILES.facility,
    subject: [{ type: 'C', value: 'JP' }, { type: 'O', value: FACILITY.name }, { type: 'CN', value: FACILITY.number }],
    notBefore,
    notAfter: new Date(notBefore.getTime() + 30 * 86_400_000),
  };
}

/** Sends a raw message to one worker, as a defective or hostile main-thread caller could, and waits for the answer to it. */
function raw(worker: Worker, message: unknown & { id: number }): Promise<FromWorker> {
  return new Promise((resolve) => {
    const on = (batch: FromWorker[]) => {
      const m = batch.find((x) => 'id' in x && x.id === message.id);
      if (m) {
        worker.off('message', on);
        resolve(m);
      }
    };
    worker.on('message', on);
    worker.ref();
    worker.postMessage([message]);
  }).finally(() => worker.unref()) as Promise<FromWorker>;
}

describe('issuance pool (worker threads)', () => {
  test('issues through the workers: CSRs checked there, distinct serials, every certificate stored, one audit chain in order', async () => {
    const ca = await openCa(2);
    try {
      assert.equal(ca.issuancePool?.size, 2);
      const dispatched = new Set<number>();
      ca.issuancePool!.onDispatch = (_op, w) => void dispatched.add(w.threadId);
      const csrs = await Promise.all(Array.from({ length: 40 }, (_, i) => csrFor(`device ${i}`)));
      const issued = await Promise.all(csrs.map((c) => ca.issue({ profile: 'facility', facilityNumber: FACILITY.number, csr: c.der, via: 'csr', actor: 'test' })));
      assert.equal(new Set(issued.map((i) => i.serial)).size, 40, 'serials are unique');
      assert.equal(dispatched.size, 2, 'both workers took requests');
      const issuing = new X509Certificate(ca.issuingDer);
      for (const [i, c] of issued.entries()) {
        const x = new X509Certificate(c.der);
        assert.ok(x.verify(issuing.publicKey), 'signed by the issuing key');
        assert.ok(x.publicKey.equals(csrs[i]!.publicKey), "the CSR's key, not another request's");
        assert.equal(x.subject, `C=JP\nO=${FACILITY.name}\nCN=${FACILITY.number}`, 'the subject comes from the registry');
        assert.equal(c.view.serialHex, c.serial);
      }
      const stored = await ca.listCertificates({ facilityNumber: FACILITY.number, status: 'issued' });
      assert.equal(stored.length, 40);
      const audit = await ca.audit.list();
      assert.deepEqual((await ca.audit.verify()).problems, []);
      for (const c of issued) {
        const mine = audit.filter((e) => e.subject === c.serial).map((e) => e.action);
        assert.deepEqual(mine, ['certificate.signing', 'certificate.issued'], `audit of ${c.serial} in order`);
      }
      // A key given directly (portal, EST, bulk) goes through the workers too.
      const direct = await ca.issueWithNewKey({ profile: 'facility', facilityNumber: FACILITY.number, keyType: 'ecdsa-p256', via: 'test', actor: 'test' });
      assert.ok(new X509Certificate(direct.der).publicKey.equals(direct.view.publicKey));
    } finally {
      await ca.close();
    }
  });

  test('a tampered or malformed CSR, a weak key in a CSR, and a key given twice are refused with their codes and change nothing', async () => {
    const ca = await openCa(2);
    try {
      const good = await csrFor('x');
      const tampered = Buffer.from(good.der);
      tampered[tampered.length - 5]! ^= 0x01; // inside the signature
      const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
      // SoftwareSigner refuses a 1024-bit key, so sign this CSR's proof of possession by hand.
      const weakSigner = { publicKey: weak.publicKey, keyType: 'rsa-2048', algorithm: 'sha256WithRSAEncryption', sign: async (d: Uint8Array) => sign('sha256', d, weak.privateKey) } as const;
      const weakCsr = await buildCsr(encodeName([{ type: 'CN', value: 'weak' }]), weakSigner);
      const before = await state(ca);
      await assert.rejects(ca.issue({ profile: 'facility', facilityNumber: FACILITY.number, csr: tampered, via: 'csr', actor: 't' }), isCode('CSR_SIGNATURE_INVALID'));
      await assert.rejects(ca.issue({ profile: 'facility', facilityNumber: FACILITY.number, csr: Buffer.from('not a csr'), via: 'csr', actor: 't' }), isCode('CSR_MALFORMED'));
      await assert.rejects(ca.issue({ profile: 'facility', facilityNumber: FACILITY.number, csr: weakCsr, via: 'csr', actor: 't' }), isCode('KEY_TOO_WEAK'));
      await assert.rejects(ca.issue({ profile: 'facility', facilityNumber: FACILITY.number, csr: good.der, publicKey: good.publicKey, via: 'csr', actor: 't' }), isCode('SUBJECT_KEY_MISSING'));
      assert.equal(await state(ca), before);
    } finally {
      await ca.close();
    }
  });

  test('regression: a lint token is single-use and bound to its pool and worker, also when replayed across threads', async () => {
    const a = await ownPool(2);
    const b = await ownPool(1);
    try {
      const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      const draft = await a.prepare(facilityRequest(), { publicKey });
      // Another issuer's pool, and a copy of the draft, are refused before anything reaches a worker.
      await assert.rejects(b.sign(draft), isCode('LINT_TOKEN_REUSED'));
      await assert.rejects(a.sign({ ...draft } as PooledDraft), isCode('LINT_TOKEN_REUSED'));
      // Sent raw to every worker of both pools (which worker holds it is the pool's business): only its own worker knows it.
      const answers = await Promise.all([...a.workers, ...b.workers].map((w, i) => raw(w, { op: 'sign', id: 900_000 + i, token: draft.token } as never)));
      const signedRaw = answers.filter((m) => m.op === 'signed');
      assert.equal(signedRaw.length, 1, 'exactly one worker holds the token');
      for (const m of answers.filter((x) => x.op === 'failed')) assert.equal((m as { error: { code: string } }).error.code, 'LINT_TOKEN_REUSED');
      // The raw use spent it: the legitimate sign now fails too (the token was used once, by whoever sent it first).
      await assert.rejects(a.sign(draft), isCode('LINT_TOKEN_REUSED'));
      // A fresh draft signs once; a second sign of it is refused.
      const fresh = await a.prepare(facilityRequest(), { publicKey });
      const signed = await a.sign(fresh);
      assert.ok(new X509Certificate(signed.der).publicKey.equals(publicKey));
      await assert.rejects(a.sign(fresh), isCode('LINT_TOKEN_REUSED'));
      const replayed = await Promise.all(a.workers.map((w, i) => raw(w, { op: 'sign', id: 910_000 + i, token: fresh.token } as never)));
      assert.ok(replayed.every((m) => m.op === 'failed' && m.error.code === 'LINT_TOKEN_REUSED'), 'a spent token is refused by every worker');
      // A worker signs nothing it did not lint: an invented token, and a request that fails its lint, yield no signature.
      const invented = await raw(a.workers[0]!, { op: 'sign', id: 920_000, token: '00'.repeat(16) } as never);
      assert.ok(invented.op === 'failed' && invented.error.code === 'LINT_TOKEN_REUSED');
      const tooLong = { ...facilityRequest(), notAfter: new Date(Date.now() + 900 * 86_400_000) };
      await assert.rejects(a.prepare(tooLong, { publicKey }), (e: unknown) => isCode('CERTIFICATE_LINT_FAILED')(e) && /validity_cap/.test((e as Error).message));
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  test('regression: the sign requests released by one commit reach the worker before the group commit starts its next transaction', async () => {
    // Posting them on the next immediate let the group commit's next transaction run first, so the
    // workers sat idle for a whole COMMIT (an fsync under synchronous=FULL) before they could sign.
    const pool = await ownPool(1);
    const log: string[] = [];
    const worker = pool.workers[0]!;
    const post = worker.postMessage.bind(worker);
    worker.postMessage = (batch: { op: string }[]) => {
      log.push(`post ${batch.map((m) => m.op).join(',')}`);
      post(batch);
    };
    const tx = { dialect: 'sqlite', inTransaction: true, all: async () => [], get: async () => undefined, run: async () => ({ changes: 1 }) } as unknown as SqlExecutor;
    const db = { ...tx, inTransaction: false, description: 'log', close: async () => undefined, transaction: async <T>(fn: (x: SqlExecutor) => Promise<T>) => (log.push('transaction'), fn(tx)) } as unknown as Database;
    const commits = new GroupCommit(db);
    try {
      const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      const drafts = await Promise.all([1, 2, 3].map(() => pool.prepare(facilityRequest(), { publicKey })));
      log.length = 0;
      // As the issuer does: reserve in a shared transaction, then sign; and one more unit arrives meanwhile.
      const signed = drafts.map((d) => commits.run(async () => 'reserved').then(() => pool.sign(d)));
      const later = new Promise<void>((resolve) => setImmediate(() => void commits.run(async () => 'next').then(() => resolve())));
      const results = await Promise.all(signed);
      await later;
      assert.equal(results.length, 3);
      assert.deepEqual(log, ['transaction', 'post sign,sign,sign', 'transaction'], 'the three signs go as one message, before the next transaction');
    } finally {
      await pool.close();
    }
  });

  test('with messages posted before each COMMIT, no sign request reaches a worker before its serial is committed, and a suspended facility\'s drafts are never signed', async () => {
    const ca = await openCa(2);
    // A second connection sees only committed rows: what a crash would leave.
    const committed = new BetterSqlite3(join(ca.paths.home, 'sekisho.db'), { readonly: true });
    try {
      const count = () => (committed.prepare("SELECT COUNT(*) AS n FROM certificates WHERE facility_number = ? AND status IN ('reserved', 'issued')").get(FACILITY.number) as { n: number }).n;
      const pool = ca.issuancePool!;
      let signs = 0;
      const short: number[] = [];
      pool.onDispatch = (op) => {
        if (op !== 'sign') return;
        signs++;
        if (count() < signs) short.push(signs);
      };
      const csrs = await Promise.all(Array.from({ length: 24 }, (_, i) => csrFor(`c${i}`)));
      const issued = await Promise.all(csrs.map((c) => ca.issue({ profile: 'facility', facilityNumber: FACILITY.number, csr: c.der, via: 'csr', actor: 't' })));
      assert.equal(issued.length, 24);
      assert.equal(signs, 24);
      assert.deepEqual(short, [], 'every sign was dispatched after at least as many serials were committed');
      // Drafts prepared, then the facility suspended before their reservation: none is signed.
      signs = 0;
      const more = csrs.slice(0, 8).map((c) => ca.issue({ profile: 'facility', facilityNumber: FACILITY.number, csr: c.der, via: 'csr', actor: 't' }));
      await ca.setFacilityStatus(FACILITY.number, 'suspended', 'test');
      const settled = await Promise.allSettled(more);
      const refused = settled.filter((r) => r.status === 'rejected');
      assert.ok(refused.length > 0, 'the suspension committed while drafts were being prepared');
      assert.ok(refused.every((r) => isCode('FACILITY_SUSPENDED')(r.reason)), 'refused ones are refused for the suspension');
      assert.equal(signs, settled.length - refused.length, 'only reserved drafts were signed');
      assert.deepEqual((await ca.audit.verify()).problems, []);
    } finally {
      committed.close();
      await ca.close();
    }
  });

  test('a worker killed while preparing fails that request cleanly (nothing written); the next request succeeds', async () => {
    const ca = await openCa(1);
    try {
      const pool = ca.issuancePool!;
      const first = pool.workers[0]!;
      const before = await state(ca);
      pool.onDispatch = (op, w) => {
        if (op === 'prepare') void w.terminate();
      };
      const csr = await csrFor('a');
      await assert.rejects(ca.issue({ profile: 'facility', facilityNumber: FACILITY.number, csr: csr.der, via: 'csr', actor: 't' }), isCode('ISSUANCE_WORKER_FAILED'));
      assert.equal(await state(ca), before, 'nothing reserved, audited or stored');
      pool.onDispatch = undefined;
      const next = await ca.issue({ profile: 'facility', facilityNumber: FACILITY.number, csr: csr.der, via: 'csr', actor: 't' });
      assert.notEqual(pool.workers[0], first, 'the dead worker was replaced');
      assert.equal((await ca.listCertificates({ status: 'issued', facilityNumber: FACILITY.number })).map((c) => c.serial).join(), next.serial);
    } finally {
      await ca.close();
    }
  });

  test('a worker killed while signing fails that request cleanly: its serial stays reserved, never issued, the failure audited; the next request succeeds', async () => {
    const ca = await openCa(1);
    try {
      const pool = ca.issuancePool!;
      pool.onDispatch = (op, w) => {
        if (op === 'sign') void w.terminate();
      };
      const csr = await csrFor('b');
      await assert.rejects(ca.issue({ profile: 'facility', facilityNumber: FACILITY.number, csr: csr.der, via: 'csr', actor: 't' }), isCode('ISSUANCE_WORKER_FAILED'));
      const certs = await ca.listCertificates();
      const reserved = certs.filter((c) => c.status === 'reserved' && c.facilityNumber === FACILITY.number);
      assert.equal(reserved.length, 1, 'the serial is reserved (it never repeats)');
      assert.equal(certs.filter((c) => c.status === 'issued' && c.facilityNumber === FACILITY.number).length, 0, 'no certificate was stored');
      const events = (await ca.audit.list()).filter((e) => e.subject === reserved[0]!.serial);
      assert.deepEqual(events.map((e) => [e.action, e.reasonCode ?? null]), [['certificate.signing', null], ['certificate.sign-failed', 'ISSUANCE_WORKER_FAILED']]);
      pool.onDispatch = undefined;
      const next = await ca.issue({ profile: 'facility', facilityNumber: FACILITY.number, csr: csr.der, via: 'csr', actor: 't' });
      assert.ok(new X509Certificate(next.der).verify(new X509Certificate(ca.issuingDer).publicKey));
      assert.deepEqual((await ca.audit.verify()).problems, []);
    } finally {
      await ca.close();
    }
  });

  test('close() waits for the issuances in flight, then refuses new ones', async () => {
    const ca = await openCa(2);
    const csrs = await Promise.all(Array.from({ length: 12 }, (_, i) => csrFor(`c${i}`)));
    const inFlight = csrs.map((c) => ca.issue({ profile: 'facility', facilityNumber: FACILITY.number, csr: c.der, via: 'csr', actor: 't' }));
    const closed = ca.close();
    const results = await Promise.allSettled(inFlight);
    await closed;
    assert.deepEqual(results.map((r) => r.status), Array(12).fill('fulfilled'), 'every issuance in flight completed');
    await assert.rejects(ca.issue({ profile: 'facility', facilityNumber: FACILITY.number, csr: csrs[0]!.der, via: 'csr', actor: 't' }), isCode('CA_CLOSING'));
    const again = await CertificateAuthority.open({ home: ca.paths.home });
    try {
      assert.equal((await again.listCertificates({ status: 'issued', facilityNumber: FACILITY.number })).length, 12);
      assert.deepEqual((await again.audit.verify()).problems, []);
    } finally {
      await again.close();
    }
  });
});

describe('issuance workers for a setting', () => {
  test("'auto' (sekisho serve) runs on the main thread on two cores or fewer, where the pool measured slower and dearer, and a worker per core above", () => {
    assert.equal(issuanceWorkerCount('auto', 1), 0);
    assert.equal(issuanceWorkerCount('auto', 2), 0);
    assert.equal(issuanceWorkerCount('auto', 4), 4);
    assert.equal(issuanceWorkerCount('cores', 2), 2);
    assert.equal(issuanceWorkerCount(3, 2), 3);
    assert.equal(issuanceWorkerCount(0, 16), 0);
  });

  test('an unusable setting is refused with ISSUANCE_WORKERS_INVALID', async () => {
    const home = join(tempDir(), 'home');
    await initAuthority({ home, passphrase: PASS });
    for (const bad of [-1, 65, 1.5]) {
      await assert.rejects(CertificateAuthority.open({ home, issuanceWorkers: bad }), isCode('ISSUANCE_WORKERS_INVALID'));
    }
  });
});
