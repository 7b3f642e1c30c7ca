/**
 * The audit trail leaves the machine: the spool sent to a real rsyslog over
 * RFC 5425 (mutual TLS, octet counting) and RFC 5426 (UDP), in order, with
 * nothing lost when the collector goes away and comes back, and a spool that
 * fills up while the collector refuses everything raising its alarm instead
 * of dropping events.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CertificateAuthority, initAuthority } from '../ca/index.js';
import { certificateToPem } from '../pki/index.js';
import { AuditSpool, StoreFollower, SyslogCollector, parseCollectorUrl, type CollectorConfig } from './index.js';
import { atnaSyslogFormatter } from './atna-format.js';
import { hasCommand, needCommand } from '../testing/peers.js';
import { tempDir } from '../testing/stores.js';
import { gatewayStoreOf } from '../store/index.js';
import { countIds, placeholderSyslogLine, rsyslogCollector, type Rsyslog } from '../testing/rsyslog.js';
import { FACILITY_A, facilityNumber } from '../testing/gateway-fixture.js';

const ready = hasCommand('rsyslogd');
const PASS = 'collector-test-passphrase';
let dir: string;
let ca: CertificateAuthority;
let client: { cert: string; key: string; ca: string };
let server: { cert: string; key: string; ca: string };

async function pemPair(name: string, order: Parameters<CertificateAuthority['issueWithNewKey']>[0]): Promise<{ cert: string; key: string }> {
  const issued = await ca.issueWithNewKey(order);
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  writeFileSync(cert, certificateToPem(issued.der) + certificateToPem(ca.chain()[0]!));
  writeFileSync(key, issued.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
  return { cert, key };
}

before(async () => {
  if (!ready) return;
  dir = tempDir('sekisho-collector-');
  const home = join(dir, 'home');
  await initAuthority({ home, passphrase: PASS });
  ca = await CertificateAuthority.open({ home });
  await ca.unlock(PASS);
  await ca.addFacility({ number: FACILITY_A, name: 'はこだて内科クリニック' }, 'test');
  const chain = join(dir, 'chain.pem');
  writeFileSync(chain, ca.chain().map(certificateToPem).join(''));
  const base = { via: 'test', actor: 'test', keyType: 'ecdsa-p256' as const };
  // The collector's server certificate and sekisho's client certificate, both from the sekisho CA.
  server = { ...(await pemPair('rsyslog', { ...base, profile: 'server', hosts: ['127.0.0.1', 'localhost'] })), ca: chain };
  client = { ...(await pemPair('sender', { ...base, profile: 'device', facilityNumber: FACILITY_A, deviceName: 'audit-sender' })), ca: chain };
});

after(async () => {
  if (ready) await ca.close();
});

const until = async (what: string, cond: () => boolean, ms = 60_000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

function tlsConfig(rs: Rsyslog): CollectorConfig {
  return { url: `tls://127.0.0.1:${rs.tcpPort}`, cert: client.cert, key: client.key, ca: client.ca };
}
const input = (rs: Rsyslog, name: 'imtcp' | 'imudp') => rs.lines().filter((l) => l.startsWith(`${name} `));
const ns = (lines: string[]) => lines.map((l) => (JSON.parse(l.slice(l.indexOf('{'))) as { n: number }).n);

describe('audit collectors against rsyslog', () => {
  test('events reach rsyslog over TLS (RFC 5425, mutual TLS) and UDP (RFC 5426), each in order', async (t) => {
    if (!needCommand(t, 'rsyslogd')) return;
    const rs = await rsyslogCollector(tempDir('sekisho-rsyslog-'), server);
    await rs.start();
    const tls = tlsConfig(rs);
    const udp: CollectorConfig = { url: `udp://127.0.0.1:${rs.udpPort}` };
    const spool = AuditSpool.open({ dir: join(tempDir('sekisho-spool-'), 'spool'), consumers: [parseCollectorUrl(tls.url).consumer, parseCollectorUrl(udp.url).consumer] });
    const collectors = [tls, udp].map((config) => new SyslogCollector({ spool, config, format: placeholderSyslogLine, confirmMs: 300 }));
    try {
      for (const c of collectors) c.start();
      const ids: string[] = [];
      for (let n = 0; n < 300; n++) {
        ids.push(spool.append({ actor: FACILITY_A, action: 'gateway.authenticated', outcome: 'success', details: { n } }).id);
        if (n % 50 === 0) await new Promise((r) => setTimeout(r, 20));
      }
      await until('300 messages over each transport', () => input(rs, 'imtcp').length >= 300 && input(rs, 'imudp').length >= 300);
      for (const name of ['imtcp', 'imudp'] as const) {
        const lines = input(rs, name);
        assert.deepEqual(ns(lines), [...Array(300).keys()], `${name}: every event once, in spool order`);
        assert.deepEqual([...countIds(lines).keys()], ids);
      }
      assert.ok(input(rs, 'imtcp')[0]!.includes('<110>1 '), 'the RFC 5424 message arrives unframed (octet counting understood)');
    } finally {
      for (const c of collectors) c.stop();
      spool.close();
      await rs.stop();
    }
  });

  test('ITI-20 messages over UDP arrive whole at the default datagram size (a gateway authentication is 3–4 KB); a smaller maxDatagram is counted and said, not silent', async (t) => {
    if (!needCommand(t, 'rsyslogd')) return;
    const rs = await rsyslogCollector(tempDir('sekisho-rsyslog-'), server);
    await rs.start();
    const whole: CollectorConfig = { url: `udp://127.0.0.1:${rs.udpPort}` };
    const small: CollectorConfig = { url: `udp://localhost:${rs.udpPort}`, maxDatagram: 2048 };
    const spool = AuditSpool.open({ dir: join(tempDir('sekisho-spool-'), 'spool'), consumers: [parseCollectorUrl(whole.url).consumer, parseCollectorUrl(small.url).consumer] });
    const format = atnaSyslogFormatter({ source: { auditSourceId: 'sekisho-gateway@center-1', hostname: 'gw1.center.example' }, appName: 'sekisho' });
    const warnings: { message: string; fields: Record<string, unknown> }[] = [];
    const collectors = [whole, small].map((config) => new SyslogCollector({ spool, config, format, confirmMs: 300, log: (_l, message, fields) => warnings.push({ message, fields }) }));
    try {
      for (const c of collectors) c.start();
      const details = { connection: '6f1c2d3e-1111-2222-3333-444455556666', listener: 'hl7', client: '203.0.113.7:51514', protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', fingerprint: 'a'.repeat(64) };
      for (let n = 0; n < 3; n++) spool.append({ actor: FACILITY_A, action: 'gateway.authenticated', outcome: 'success', subject: '4f3c2a1b9e8d7c6b5a', details: { ...details, n } });
      await until('six datagrams', () => input(rs, 'imudp').length >= 6);
      const lines = input(rs, 'imudp');
      const complete = lines.filter((l) => l.includes('</AuditMessage>'));
      assert.equal(complete.length, 3, 'the default collector\'s three arrive whole (the other three are cut)');
      assert.ok(complete.every((l) => Buffer.byteLength(l) > 2048), 'and are longer than RFC 5426\'s 2048');
      assert.equal(collectors[0]!.truncated, 0);
      assert.equal(collectors[1]!.truncated, 3);
      assert.equal(warnings.length, 1, 'said once (a minute), not per message');
      assert.match(warnings[0]!.message, /maxDatagram/);
      assert.equal(warnings[0]!.fields.maxDatagram, 2048);
    } finally {
      for (const c of collectors) c.stop();
      spool.close();
      await rs.stop();
    }
  });

  test('rsyslog stopped mid-stream and restarted: nothing lost, duplicates only of the unconfirmed window', async (t) => {
    if (!needCommand(t, 'rsyslogd')) return;
    const rs = await rsyslogCollector(tempDir('sekisho-rsyslog-'), server);
    await rs.start();
    const tls = tlsConfig(rs);
    const spool = AuditSpool.open({ dir: join(tempDir('sekisho-spool-'), 'spool'), consumers: [parseCollectorUrl(tls.url).consumer], cursorMs: 100 });
    const collector = new SyslogCollector({ spool, config: tls, format: placeholderSyslogLine, confirmMs: 1000, backoffMs: { min: 200, max: 1000 } });
    const total = 1200;
    const ids: string[] = [];
    try {
      collector.start();
      let stopped = false;
      for (let n = 0; n < total; n++) {
        ids.push(spool.append({ actor: FACILITY_A, action: 'gateway.authenticated', outcome: 'success', details: { n } }).id);
        await new Promise((r) => setTimeout(r, 2));
        if (n === 400) {
          await until('some events at the collector', () => input(rs, 'imtcp').length > 100);
          await rs.stop();
          stopped = true;
        }
        if (stopped && n === 800) {
          await rs.start();
          stopped = false;
        }
      }
      await until('every event at the collector', () => countIds(input(rs, 'imtcp')).size === total, 90_000);
      await new Promise((r) => setTimeout(r, 1500));
      const counts = countIds(input(rs, 'imtcp'));
      assert.deepEqual(new Set(counts.keys()), new Set(ids), 'every event arrived');
      const duplicates = [...counts.values()].reduce((a, c) => a + (c - 1), 0);
      assert.ok(collector.resent > 0, 'the break left messages unconfirmed, which were sent again');
      assert.ok(duplicates <= collector.resent, `duplicates (${duplicates}) stay within what was unconfirmed at the break (${collector.resent})`);
      // Order: after each id's first arrival, ids only move forward except for the resent window.
      const firstSeen = ns(input(rs, 'imtcp')).filter((n, i, a) => a.indexOf(n) === i);
      assert.deepEqual(firstSeen, [...Array(total).keys()], 'first arrivals in spool order');
    } finally {
      collector.stop();
      spool.close();
      await rs.stop();
    }
  });

  test('CA actions, committed straight to the store, reach the collector once, with their place in the chain', async (t) => {
    if (!needCommand(t, 'rsyslogd')) return;
    const rs = await rsyslogCollector(tempDir('sekisho-rsyslog-'), server);
    await rs.start();
    const tls = tlsConfig(rs);
    const dir = join(tempDir('sekisho-spool-'), 'spool');
    const spool = AuditSpool.open({ dir, consumers: [parseCollectorUrl(tls.url).consumer] });
    const follower = new StoreFollower(spool, gatewayStoreOf(ca.db).audit, { dir, intervalMs: 100 });
    const collector = new SyslogCollector({ spool, config: tls, format: placeholderSyslogLine, confirmMs: 300 });
    try {
      await follower.start(); // from the head: earlier history is not sent
      collector.start();
      await ca.addFacility({ number: facilityNumber('271111111'), name: '堺クリニック' }, 'operator:test');
      await ca.setFacilityStatus(FACILITY_A, 'suspended', 'operator:test');
      await ca.setFacilityStatus(FACILITY_A, 'active', 'operator:test');
      const mine = () => input(rs, 'imtcp').map((l) => JSON.parse(l.slice(l.indexOf('{'))) as { id: string; action: string; seq: number });
      await until('three CA events at the collector', () => mine().length >= 3);
      await new Promise((r) => setTimeout(r, 500));
      const got = mine();
      assert.deepEqual(got.map((g) => g.action), ['facility.add', 'facility.suspend', 'facility.resume']);
      assert.ok(got.every((g, i) => g.seq > 0 && (i === 0 || g.seq === got[i - 1]!.seq + 1)), 'with their chain seq, in order');
      // A signed checkpoint follows them out, so the collector's copy can prove what the trail held.
      const cp = await ca.checkpoint({ force: true });
      assert.ok(cp);
      await until('the checkpoint at the collector', () => mine().some((g) => g.action === 'audit.checkpoint'));
      const sent = input(rs, 'imtcp').map((l) => JSON.parse(l.slice(l.indexOf('{'))) as { action: string; seq: number; signature?: string; headHash?: string }).find((g) => g.action === 'audit.checkpoint')!;
      assert.equal(sent.seq, cp.seq);
      assert.equal(sent.signature, cp.signature, 'the checkpoint goes out with its signature');
      assert.equal(sent.headHash, cp.headHash);
    } finally {
      await follower.stop();
      collector.stop();
      spool.close();
      await rs.stop();
    }
  });

  test('regression: a CA event altered in the store so it cannot be rendered (a five-digit year, no time, details not JSON) neither stalls, floods nor crashes the export: an alert goes in its place and later events follow', async (t) => {
    if (!needCommand(t, 'rsyslogd')) return;
    const rs = await rsyslogCollector(tempDir('sekisho-rsyslog-'), server);
    await rs.start();
    const tls = tlsConfig(rs);
    const dir = join(tempDir('sekisho-spool-'), 'spool');
    const logs: { level: string; message: string }[] = [];
    const spool = AuditSpool.open({ dir, consumers: [parseCollectorUrl(tls.url).consumer], log: (level, message) => logs.push({ level, message }) });
    const follower = new StoreFollower(spool, gatewayStoreOf(ca.db).audit, { dir, intervalMs: 100 });
    const format = atnaSyslogFormatter({ source: { auditSourceId: 'sekisho-gateway@center-1', hostname: 'gw1.center.example' }, appName: 'sekisho' });
    const collector = new SyslogCollector({ spool, config: tls, format, confirmMs: 300, log: (level, message) => logs.push({ level, message }) });
    const of = (action: string) => input(rs, 'imtcp').filter((l) => l.includes(`csd-code="${action}"`));
    try {
      await follower.start();
      collector.start();
      // Each row is altered in the transaction that appends it, so the follower only ever sees the altered row.
      const tampered: [string, string][] = [
        ['at', '+010000-01-01T00:00:00.000Z'],
        ['at', 'not a time'],
        ['details', '{"unterminated'],
      ];
      for (const [column, value] of tampered) {
        await ca.db.transaction(async (tx) => {
          const e = await ca.audit.appendIn(tx, { actor: 'operator:test', action: 'test.poisoned', outcome: 'success', details: {} });
          await tx.run(`UPDATE audit_events SET ${column} = ? WHERE seq = ?`, [value, e.seq]);
        });
      }
      await ca.audit.append({ actor: 'operator:test', action: 'test.after-poison', outcome: 'success' });
      // A spooled record whose time no syslog header can carry (RFC 5424: four-digit year).
      spool.appendStored({ actor: 'ca', action: 'test.far-future', outcome: 'success' }, new Date('+010000-01-01T00:00:00.000Z'), { seq: 1, hash: 'h' });
      spool.append({ actor: FACILITY_A, action: 'test.after-far-future', outcome: 'success' });
      await until('the events after the poisoned ones at the collector', () => of('test.after-poison').length >= 1 && of('test.after-far-future').length >= 1, 20_000);
      const appended = spool.appended;
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(spool.appended, appended, 'nothing is spooled again and again');
      assert.equal(follower.lastError, undefined);
      assert.equal(follower.unreadable, 3);
      assert.equal(of('audit.record-unreadable').length, 3, 'one alert per unreadable row');
      assert.equal(of('test.poisoned').length, 0);
      assert.equal(of('test.after-poison').length, 1);
      assert.equal(collector.unformattable, 1);
      assert.equal(of('audit.record-unformattable').length, 1, 'an alert in place of the record the format cannot render');
      assert.ok(of('audit.record-unformattable')[0]!.includes('SYSLOG_HEADER_INVALID'));
      assert.ok(logs.some((l) => l.level === 'error' && /could not be formatted/.test(l.message)));
    } finally {
      await follower.stop();
      collector.stop();
      spool.close();
      await rs.stop();
    }
  });

  test('a collector that refuses everything: the spool fills to its high-water mark, raises the alarm, refuses rather than drops, and delivers all once the collector is back', async (t) => {
    if (!needCommand(t, 'rsyslogd')) return;
    const rs = await rsyslogCollector(tempDir('sekisho-rsyslog-'), server);
    const tls = tlsConfig(rs); // rsyslog not started: every connection refused
    const logs: { level: string; message: string }[] = [];
    const spool = AuditSpool.open({
      dir: join(tempDir('sekisho-spool-'), 'spool'),
      consumers: [parseCollectorUrl(tls.url).consumer],
      segmentBytes: 8192,
      maxBytes: 65_536,
      highWater: 0.75,
      cursorMs: 100,
      log: (level, message) => logs.push({ level, message }),
    });
    const collector = new SyslogCollector({ spool, config: tls, format: placeholderSyslogLine, confirmMs: 300, backoffMs: { min: 100, max: 300 } });
    const ids: string[] = [];
    let refused = 0;
    try {
      collector.start();
      let alarmAt = -1;
      for (let n = 0; n < 2000 && refused < 5; n++) {
        try {
          ids.push(spool.append({ actor: FACILITY_A, action: 'gateway.authenticated', outcome: 'success', details: { n, pad: 'x'.repeat(100) } }).id);
        } catch (e) {
          assert.equal((e as { code?: string }).code, 'AUDIT_SPOOL_FULL');
          refused++;
        }
        if (alarmAt < 0 && spool.alarm()) alarmAt = n;
      }
      assert.equal(refused, 5, 'a full spool refuses appends with AUDIT_SPOOL_FULL');
      assert.ok(alarmAt > 0 && alarmAt < ids.length, 'the alarm rose before the spool was full');
      assert.ok(logs.some((l) => l.level === 'error' && /high-water/.test(l.message)), 'the alarm was logged');
      assert.equal(spool.alarm()?.refused, 5, 'the alarm counts what it refused');
      assert.ok(spool.bytes() <= 65_536);
      await until('the collector to be refused', () => collector.lastError !== undefined);
      // Nothing dropped: every accepted event is still in the spool.
      assert.deepEqual(spool.read(spool.cursor(collector.consumer), 100_000).map((e) => e.record.id), ids);

      await rs.start();
      await until('every accepted event at the collector', () => ids.every((id) => countIds(input(rs, 'imtcp')).has(id)), 90_000);
      await until('the alarm to clear', () => (spool.flushCursors(), spool.alarm() === undefined), 30_000);
      await until('the high-water event at the collector', () => input(rs, 'imtcp').some((l) => l.includes('audit.spool-high-water')), 30_000);
      const counts = countIds(input(rs, 'imtcp'));
      for (const id of ids) assert.equal(counts.get(id), 1, 'each event exactly once (the collector was never reached before)');
    } finally {
      collector.stop();
      spool.close();
      await rs.stop();
    }
  });
});
