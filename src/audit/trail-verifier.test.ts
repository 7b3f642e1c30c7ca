import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { SoftwareSigner } from '../pki/index.js';
import type { AuditRow } from '../store/index.js';
import { eventHash, GENESIS_HASH } from './chain.js';
import { CHECKPOINT_GENESIS_HASH, signCheckpoint, type AuditCheckpoint } from './checkpoint.js';
import { TrailVerifier } from './trail-verifier.js';

const signer = new SoftwareSigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);

function chain(n: number, edit?: { seq: number; details: string }): AuditRow[] {
  const rows: AuditRow[] = [];
  let prev = GENESIS_HASH;
  for (let seq = 1; seq <= n; seq++) {
    const base = { seq, writer: 'ca', writer_seq: seq, at: `2026-01-01T00:00:${String(seq).padStart(2, '0')}.000Z`, actor: 'gateway', action: 'gateway.authenticated', outcome: 'success', reason_code: null, subject: '0110113719', details: edit?.seq === seq ? edit.details : '{}', prev_hash: prev };
    const row = { ...base, hash: eventHash(base) };
    rows.push(row);
    prev = row.hash;
  }
  return rows;
}

async function checkpoints(rows: AuditRow[], at: number[]): Promise<AuditCheckpoint[]> {
  const out: AuditCheckpoint[] = [];
  for (const seq of at) {
    const prev = out[out.length - 1];
    out.push(await signCheckpoint(signer, { id: out.length + 1, seq, headHash: seq === 0 ? GENESIS_HASH : rows[seq - 1]!.hash, at: '2026-01-01T01:00:00.000Z', prevHash: prev?.hash ?? CHECKPOINT_GENESIS_HASH }));
  }
  return out;
}

function verify(rows: AuditRow[], cps: AuditCheckpoint[]) {
  const v = new TrailVerifier({ publicKey: signer.publicKey, checkpoints: cps });
  for (const r of rows) v.add(r);
  const last = rows[rows.length - 1];
  return v.finish({ seq: last?.seq ?? 0, hash: last?.hash ?? GENESIS_HASH });
}

test('a recomputed rewrite inside a long stretch signed by one checkpoint (serve) is named as the range between two checkpoints', async () => {
  const cps = await checkpoints(chain(10), [0, 4, 4, 10]);
  const r = verify(chain(10, { seq: 7, details: '{"forged":true}' }), cps);
  assert.equal(r.status, 'tampered');
  assert.deepEqual(r.problems.map((p) => [p.kind, p.seq, p.toSeq, p.checkpoint]), [['altered', 5, 10, 4]]);
  assert.match(r.problems[0]!.message, /^audit events 5–10 do not match signed checkpoint 4: one or more of them was altered, removed or inserted/);
});

test('an intact trail with an empty-trail checkpoint and a forced repeat at the same event verifies; later events are uncovered', async () => {
  const rows = chain(12);
  const r = verify(rows, await checkpoints(rows, [0, 4, 4, 10]));
  assert.equal(r.status, 'intact', JSON.stringify(r.problems));
  assert.deepEqual(r.signedThrough, { checkpoint: 4, seq: 10, at: '2026-01-01T01:00:00.000Z' });
  assert.deepEqual(r.uncovered, { fromSeq: 11, toSeq: 12 });
});

test('checkpoints out of order (a later one signing an earlier event) and events without any checkpoint', async () => {
  const rows = chain(6);
  const swapped = await checkpoints(rows, [5, 3]);
  assert.deepEqual(verify(rows, swapped).problems.map((p) => [p.kind, p.checkpoint]), [['checkpoint-invalid', 2]]);
  const none = verify(rows, []);
  assert.equal(none.status, 'unverifiable');
  assert.match(none.reason!, /no signed checkpoint/);
});

test('regression: a trail altered row by row (50,000 events, 5,000 checkpoints) is verified without quadratic work or unbounded output: the first 1,000 problems named, the rest counted in one', async () => {
  const rows = chain(50_000);
  const cps = await checkpoints(rows, Array.from({ length: 5_000 }, (_, i) => (i + 1) * 10));
  // Every row edited without recomputing: each is altered after it was written.
  const edited = rows.map((r) => ({ ...r, actor: 'someone else' }));
  const started = process.hrtime.bigint();
  const r = verify(edited, cps);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  assert.equal(r.status, 'tampered');
  assert.equal(r.problems.length, 1_001);
  assert.ok(r.problems.slice(0, 1_000).every((p, i) => p.kind === 'altered' && p.seq === i + 1));
  assert.match(r.problems[1_000]!.message, /^and 49000 more problems in the audit chain \(49000 altered\), not named one by one: the first 1000 are$/);
  assert.ok(ms < 20_000, `verified in ${ms} ms`);
});

test('regression: an extra row for a place already read, or a place that is no number, is named inserted and the chain around it still verifies', async () => {
  const rows = chain(8);
  const cps = await checkpoints(rows, [8]);
  const v = new TrailVerifier({ publicKey: signer.publicKey, checkpoints: cps });
  for (const r of rows.slice(0, 4)) v.add(r);
  v.add({ ...rows[3]!, seq: 99, action: 'gateway.refused' }); // a second row for place 4
  v.add({ ...rows[3]!, seq: 100, writer_seq: Number.NaN });
  for (const r of rows.slice(4)) v.add(r);
  const r = v.finish({ seq: 8, hash: rows[7]!.hash });
  assert.deepEqual(r.problems.map((p) => p.kind), ['inserted', 'inserted'], JSON.stringify(r.problems));
  assert.match(r.problems.find((p) => p.seq === 4)!.message, /^a second row for audit event 4 \(store seq 99, gateway.refused at/);
  assert.equal(r.events, 8);
});
