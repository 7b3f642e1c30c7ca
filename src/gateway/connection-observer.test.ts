import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildClientHello } from '../scan/wire/client-hello.js';
import { complianceProfile, fixedSchedule, policyOutlook, type PolicyOutlook } from '../policy/index.js';
import type { ObservationRow } from '../store/index.js';
import { ConnectionObserver, type ObservationSink } from './connection-observer.js';
import type { Logger } from './log.js';

const quiet: Logger = { log: () => undefined, enabled: () => false };
const CBC = 0xc023; // TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256
const tls10 = buildClientHello({ version: 'TLSv1.0', cipherSuites: [0xc009, 0x002f] });

function observer(o: { sink?: ObservationSink; maxRows?: number; maxAnonymousRowsPerDay?: number; now?: () => Date; outlook?: PolicyOutlook } = {}) {
  const written: ObservationRow[][] = [];
  const sink: ObservationSink = o.sink ?? { upsert: async (rows) => void written.push([...rows]) };
  const outlook = o.outlook ?? policyOutlook({ phases: [{ profile: complianceProfile('exception') }, { from: new Date('2027-04-01T00:00:00+09:00'), profile: complianceProfile('mhlw') }], clientPolicy: { exceptions: [] } }, new Date('2026-12-07T00:00:00Z'));
  const obs = new ConnectionObserver({ outlook: () => outlook, sink, log: quiet, ...(o.maxRows ? { maxRows: o.maxRows } : {}), ...(o.maxAnonymousRowsPerDay ? { maxAnonymousRowsPerDay: o.maxAnonymousRowsPerDay } : {}), ...(o.now ? { now: o.now } : {}) });
  return { obs, written };
}

describe('connection observer: judged twice, summed in memory, written in batches', () => {
  test('an old-protocol client refused in the handshake: both verdicts from its hello, and no claim about a certificate it never reached', () => {
    const { obs } = observer();
    const v = obs.note({ address: '192.0.2.7', hello: tls10, refusal: 'PROTOCOL_TOO_OLD', inHandshake: true })!;
    assert.equal(v.now.accepted, true, 'exception allows TLS 1.0');
    assert.deepEqual(v.coming!.problems.map((p) => p.code), ['PROTOCOL_TOO_OLD'], 'mhlw requires a certificate, but the handshake never got that far');
  });

  test('not a TLS client at all: nothing is recorded (the refusal digest counts it)', () => {
    const { obs } = observer();
    assert.equal(obs.note({ address: '192.0.2.7', hello: Buffer.from('GET / HTTP/1.1\r\n\r\n'), refusal: 'NOT_TLS', inHandshake: true }), undefined);
    assert.equal(obs.pending(), 0);
  });

  test('a refusal no policy decides (no certificate) stands under the coming policy too', async () => {
    const { obs, written } = observer({ outlook: policyOutlook({ ...fixedSchedule(complianceProfile('recommended')), phases: [{ profile: complianceProfile('recommended') }, { from: new Date('2027-04-01T00:00:00+09:00'), profile: complianceProfile('high') }] }, new Date('2026-12-07T00:00:00Z')) });
    obs.note({ address: '192.0.2.8', hello: buildClientHello({ version: 'TLSv1.3', cipherSuites: [0x1301] }), refusal: 'NO_CLIENT_CERT', inHandshake: true });
    await obs.flush();
    assert.equal(written[0]![0]!.verdictNow, 'NO_CLIENT_CERT');
    assert.equal(written[0]![0]!.verdictComing, 'NO_CLIENT_CERT');
  });

  test('the same client again adds to its row; a new day (Japan time) starts a new row', async () => {
    let now = new Date('2026-12-07T14:59:59Z'); // 23:59:59 JST
    const { obs, written } = observer({ now: () => now });
    const h = { address: '192.0.2.7', hello: tls10, protocol: 'TLSv1.2', suite: 'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256' };
    obs.note(h);
    obs.note(h);
    now = new Date('2026-12-07T15:00:00Z'); // 00:00 JST the next day
    obs.note(h);
    await obs.flush();
    assert.deepEqual(written[0]!.map((r) => [r.day, r.connections]), [['2026-12-07', 2], ['2026-12-08', 1]]);
    assert.equal(written[0]![0]!.verdictComing, 'SUITE_NOT_ALLOWED+CLIENT_CERT_MISSING');
    void CBC;
  });

  test('defect guarded: a slow stream of new addresses and random hellos, spread over many intervals, adds at most maxAnonymousRowsPerDay rows a day; the rest fold into "*" and are still counted', async () => {
    const { obs, written } = observer({ maxRows: 5, maxAnonymousRowsPerDay: 8 });
    for (let i = 0; i < 40; i++) {
      obs.note({ address: `2001:db8::${i.toString(16)}`, hello: buildClientHello({ version: 'TLSv1.0', cipherSuites: [0x002f, 0x0100 + i] }), refusal: 'PROTOCOL_TOO_OLD', inHandshake: true });
      if (i % 3 === 2) await obs.flush(); // under the per-interval bound every time
    }
    await obs.flush();
    const rows = written.flat();
    assert.equal(rows.filter((r) => r.subject !== '*').length, 8);
    assert.equal(rows.reduce((n, r) => n + r.connections, 0), 40);
  });

  test('defect guarded: a flood of distinct addresses is bounded; rows beyond maxRows fold into "*" and no connection is lost', async () => {
    const { obs, written } = observer({ maxRows: 5 });
    for (let i = 0; i < 1000; i++) obs.note({ address: `198.51.100.${i % 250}`, hello: tls10, refusal: 'PROTOCOL_TOO_OLD', inHandshake: true });
    assert.ok(obs.pending() <= 6, `pending ${obs.pending()}`);
    await obs.flush();
    const rows = written[0]!;
    assert.equal(rows.reduce((n, r) => n + r.connections, 0), 1000);
    assert.ok(rows.some((r) => r.subject === '*' && r.address === null));
    assert.ok(obs.stats.folded > 0);
  });

  test('a failed write keeps the sums for the next one (still bounded)', async () => {
    let fail = true;
    const got: ObservationRow[] = [];
    const { obs } = observer({
      sink: {
        upsert: async (rows) => {
          if (fail) throw new Error('database is away');
          got.push(...rows);
        },
      },
    });
    obs.note({ address: '192.0.2.9', hello: tls10, refusal: 'PROTOCOL_TOO_OLD', inHandshake: true });
    await obs.flush();
    assert.equal(obs.stats.failures, 1);
    obs.note({ address: '192.0.2.9', hello: tls10, refusal: 'PROTOCOL_TOO_OLD', inHandshake: true });
    fail = false;
    await obs.flush();
    assert.equal(got.length, 1);
    assert.equal(got[0]!.connections, 2);
  });
});
