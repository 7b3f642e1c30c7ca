/**
 * Expiring certificates and the renewal campaign from the command line:
 * `cert list --expiring` (soonest first, with the renewal already under way)
 * and `notice create --expiring` (one transaction of notices, one PDF of
 * letters that pdftoppm opens with a page per notice, one mail-merge CSV
 * parsed back whose IDs really claim their notices; skipped facilities named;
 * letters that cannot be printed leave no notice behind).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CertificateAuthority, initAuthority, LETTER_CSV_HEADER } from '../ca/index.js';
import { hasChromium } from '../testing/browser.js';
import { runAsync, needCommand, needPeer } from '../testing/peers.js';
import { facilityNumber } from '../testing/gateway-fixture.js';
import { tempDir } from '../testing/stores.js';
import { runCli } from './run.js';

const PASSPHRASE = 'campaign-test-passphrase';
// Each facility's certificate ends in a different number of days; the names say what a campaign must do.
const F = {
  soon: { number: facilityNumber('011011371'), name: 'はこだて内科クリニック', days: 10 },
  later: { number: facilityNumber('131234567'), name: '=1+2 東京薬局', days: 45 },
  renewed: { number: facilityNumber('271234567'), name: '大阪病院', days: 15 },
  noticed: { number: facilityNumber('401234567'), name: '福岡歯科', days: 20 },
  suspended: { number: facilityNumber('231234567'), name: '名古屋眼科', days: 12 },
  far: { number: facilityNumber('141234567'), name: '横浜整形外科', days: 400 },
} as const;

interface Expiring {
  serial: string;
  facilityNumber: string;
  daysLeft: number;
  renewal: string;
  openNotice?: string;
  newerSerial?: string;
}

describe('cert list --expiring and notice create --expiring', () => {
  let dir: string;
  let home: string;
  let ca: CertificateAuthority;
  const serials: Record<string, string> = {};
  let openNotice: string;
  let newer: string;

  async function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
    let stdout = '';
    let stderr = '';
    const status = await runCli(args, { stdout: (s) => void (stdout += `${s}\n`), stderr: (s) => void (stderr += `${s}\n`), env: { PATH: process.env.PATH, SEKISHO_HOME: home, SEKISHO_ACTOR: 'operator:clerk-suzuki', ...env }, isTTY: false });
    return { status, stdout, stderr };
  }

  before(async () => {
    dir = tempDir('sekisho-campaign-');
    home = join(dir, 'home');
    await initAuthority({ home, passphrase: PASSPHRASE });
    ca = await CertificateAuthority.open({ home });
    await ca.unlock(PASSPHRASE);
    for (const f of Object.values(F)) {
      await ca.addFacility({ number: f.number, name: f.name }, 'test');
      serials[f.number] = (await ca.issueWithNewKey({ profile: 'facility', facilityNumber: f.number, validityDays: f.days, keyType: 'ecdsa-p256', via: 'test', actor: 'test' })).serial;
    }
    newer = (await ca.issueWithNewKey({ profile: 'facility', facilityNumber: F.renewed.number, validityDays: 700, keyType: 'ecdsa-p256', via: 'test', actor: 'test' })).serial;
    openNotice = (await ca.notices.create({ facilityNumber: F.noticed.number, actor: 'test' })).id;
    await ca.setFacilityStatus(F.suspended.number, 'suspended', 'test');
    // A revoked certificate inside the window is not live: never listed.
    const revoked = await ca.issueWithNewKey({ profile: 'facility', facilityNumber: F.soon.number, validityDays: 25, keyType: 'ecdsa-p256', via: 'test', actor: 'test' });
    await ca.revoke(revoked.serial, 'keyCompromise', 'test');
  });
  after(async () => {
    await ca.close();
  });

  test('cert list --expiring: live certificates of active facilities in the window, soonest first, with the renewal under way', async () => {
    const r30 = await cli(['cert', 'list', '--expiring', '30d', '--json']);
    assert.equal(r30.status, 0, r30.stderr);
    const l30 = JSON.parse(r30.stdout) as Expiring[];
    assert.deepEqual(l30.map((c) => [c.facilityNumber, c.renewal]), [
      [F.soon.number, 'none'],
      [F.renewed.number, 'newer-certificate'],
      [F.noticed.number, 'open-notice'],
    ]);
    assert.equal(l30[0]!.serial, serials[F.soon.number]);
    assert.equal(l30[0]!.daysLeft, 9);
    assert.equal(l30[1]!.newerSerial, newer);
    assert.equal(l30[2]!.openNotice, openNotice);
    const r60 = await cli(['cert', 'list', '--expiring', '60']);
    assert.equal(r60.status, 0, r60.stderr);
    assert.match(r60.stdout, /^4 certificate\(s\) of active facilities end within 60 days/);
    assert.ok(r60.stdout.includes(F.later.number) && !r60.stdout.includes(F.suspended.number) && !r60.stdout.includes(F.far.number));
    assert.match(r60.stdout, new RegExp(`${F.noticed.number}.*notice ${openNotice} open`));
    for (const bad of ['60x', '0d', '-5d', '9999d', 'd']) {
      const r = await cli(['cert', 'list', `--expiring=${bad}`]);
      assert.equal(r.status, 2, bad);
      assert.match(r.stderr, /EXPIRY_WINDOW_INVALID/, bad);
    }
    assert.equal((await cli(['cert', 'list', '--expiring', '30d', '--status', 'issued'])).status, 2);
  });

  test('a campaign whose letters cannot be printed leaves no notice behind (all withdrawn in one step) and no file', async () => {
    const out = join(dir, 'failed');
    (await import('node:fs')).mkdirSync(out);
    const r = await cli(['notice', 'create', '--expiring', '60d', '--out-dir', out, '--portal', 'https://portal.example/'], { SEKISHO_CHROMIUM: '/bin/false' });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /CAMPAIGN_LETTERS_FAILED.*2 notices were revoked again/);
    assert.deepEqual(readdirSync(out), []);
    const open = (await ca.notices.list()).filter((n) => n.state === 'active' && n.id !== openNotice);
    assert.deepEqual(open, [], 'no usable notice without a letter');
    const events = await ca.audit.search({ action: 'notice.campaign-withdrawn' });
    assert.equal(events.length, 1);
    assert.equal(events[0]!.reasonCode, 'LETTER_PDF_FAILED');
  });

  test('notice create --expiring: notices for those who need one, one PDF page each, a mail-merge CSV (0600, formula-safe) whose IDs claim the notices; skips said', async (tc) => {
    if (!needPeer(tc, hasChromium(), 'Chromium (/usr/bin/chromium)') || !needCommand(tc, 'pdftoppm')) return;
    const out = join(dir, 'letters');
    (await import('node:fs')).mkdirSync(out);
    const dry = await cli(['notice', 'create', '--expiring', '60d', '--dry-run', '--json']);
    assert.equal(dry.status, 0, dry.stderr);
    assert.deepEqual((JSON.parse(dry.stdout) as { selected: { facility: string }[] }).selected.map((s) => s.facility), [F.soon.number, F.later.number]);
    assert.equal((await ca.notices.list()).filter((n) => n.state === 'active').length, 1, 'a dry run creates nothing');

    const r = await cli(['notice', 'create', '--expiring', '60d', '--out-dir', out, '--portal', 'https://portal.example/']);
    assert.equal(r.status, 0, r.stderr);
    const campaign = /renewal campaign (C-[A-Z0-9]{8})/.exec(r.stdout)?.[1];
    assert.ok(campaign, r.stdout);
    assert.match(r.stdout, /2 notice\(s\) created, 3 facility\(ies\) skipped/);
    assert.match(r.stdout, new RegExp(`skipped ${F.suspended.number} .*facility-suspended`));
    assert.match(r.stdout, new RegExp(`skipped ${F.renewed.number} .*newer-certificate.*${newer}`));
    assert.match(r.stdout, new RegExp(`skipped ${F.noticed.number} .*open-notice.*${openNotice}`));
    assert.match(r.stdout, /0600/);
    const pdf = join(out, `renewal-${campaign}-letters.pdf`);
    const csv = join(out, `renewal-${campaign}-mail-merge.csv`);
    for (const f of [pdf, csv]) assert.equal(statSync(f).mode & 0o777, 0o600, f);

    const ppm = await runAsync('pdftoppm', ['-png', '-r', '20', pdf, join(dir, 'page')]);
    assert.equal(ppm.status, 0, ppm.stderr);
    assert.equal(readdirSync(dir).filter((f) => /^page-\d+\.png$/.test(f)).length, 2, 'one page per notice');

    const text = readFileSync(csv, 'utf8');
    assert.ok(text.startsWith('\uFEFF'), 'BOM for Excel');
    const rows = parseCsv(text.slice(1));
    assert.deepEqual(rows[0], [...LETTER_CSV_HEADER]);
    const body = rows.slice(1).map((row) => Object.fromEntries(LETTER_CSV_HEADER.map((h, i) => [h, row[i]!])));
    assert.deepEqual(body.map((b) => b.facilityNumber), [F.soon.number, F.later.number]);
    assert.equal(body[1]!.facilityName, `'${F.later.name}`, 'a name that would start a formula is neutralized');
    assert.equal(body[0]!.replacesSerial, serials[F.soon.number]);
    assert.ok(!r.stdout.includes(body[0]!.referenceId!), 'the reference IDs are only in the files');
    // The IDs of the CSV are the notices' real IDs.
    const claim = await ca.notices.claim({ requestId: body[0]!.requestId!, referenceId: body[0]!.referenceId! }, { client: 'test', via: 'test' });
    assert.equal(claim.facility.number, F.soon.number);
    await ca.notices.release(claim, 'TEST');

    const [event] = await ca.audit.search({ action: 'notice.campaign', limit: 1 });
    assert.equal(event!.actor, 'operator:clerk-suzuki');
    assert.equal(event!.subject, campaign);
    assert.deepEqual({ ...event!.details }, { windowDays: 60, selected: 2, created: 2, skipped: 3, skippedBy: { 'facility-suspended': 1, 'newer-certificate': 1, 'open-notice': 1 } });
    const created = await ca.audit.search({ action: 'notice.created', limit: 2 });
    assert.ok(created.every((e) => (e.details as { campaign?: string }).campaign === campaign));

    // Again: everyone now has an open notice; nothing is created and no file written.
    const again = await cli(['notice', 'create', '--expiring', '60d', '--out-dir', out, '--json']);
    assert.equal(again.status, 0, again.stderr);
    const j = JSON.parse(again.stdout) as { notices: unknown[]; skipped: { reason: string }[]; letters: string | null };
    assert.equal(j.notices.length, 0);
    assert.equal(j.letters, null);
    assert.equal(j.skipped.filter((s) => s.reason === 'open-notice').length, 3);
    assert.equal(readdirSync(out).length, 2);
  });

  test('audit list searches by type prefix, actor and facility, newest first; bad terms are exit 2 before the store opens', async () => {
    const r = await cli(['audit', 'list', '--action', 'notice.*', '--actor', 'operator:clerk-suzuki', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const events = JSON.parse(r.stdout) as { seq: number; action: string; actor: string }[];
    assert.ok(events.length > 0 && events.every((e) => e.action.startsWith('notice.') && e.actor === 'operator:clerk-suzuki'));
    assert.deepEqual([...events].sort((a, b) => b.seq - a.seq), events, 'newest first');
    const byFacility = JSON.parse((await cli(['audit', 'list', '--facility', F.suspended.number, '--json'])).stdout) as { action: string }[];
    assert.ok(byFacility.some((e) => e.action === 'facility.suspend'), JSON.stringify(byFacility.map((e) => e.action)));
    for (const bad of [['--facility', '123'], ['--from', '2026-02-30'], ['--action', 'a b'], ['--to', 'yesterday']]) {
      const b = await runCli(['audit', 'list', '--home', '/nonexistent', ...bad], { stdout: () => undefined, stderr: (s) => assert.match(s, /AUDIT_SEARCH_INVALID/), env: {}, isTTY: false });
      assert.equal(b, 2, bad.join(' '));
    }
  });

  test('report refusals sums the last day by reason and facility, counting summed unidentified refusals', async () => {
    await ca.audit.append({ actor: F.soon.number, action: 'gateway.refused', outcome: 'minorFailure', reasonCode: 'REVOKED', subject: serials[F.soon.number]!, details: { listener: 'web', detail: 'revoked' } });
    await ca.audit.append({ actor: F.soon.number, action: 'gateway.request-refused', outcome: 'minorFailure', reasonCode: 'ACCESS_DENIED', details: { listener: 'web' } });
    await ca.audit.append({ actor: 'unknown', action: 'gateway.refused.unidentified', outcome: 'minorFailure', reasonCode: 'NO_CLIENT_CERT', details: { count: 5, address: '192.0.2.9' } });
    const r = await cli(['report', 'refusals', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { total: number; byReason: { reason: string; count: number }[]; byFacility: { facility: string | null; name: string | null; count: number }[] };
    assert.equal(j.total, 7);
    assert.deepEqual(j.byReason.map((x) => [x.reason, x.count]), [['NO_CLIENT_CERT', 5], ['ACCESS_DENIED', 1], ['REVOKED', 1]]);
    assert.deepEqual(j.byFacility.map((x) => [x.facility, x.name, x.count]), [[F.soon.number, F.soon.name, 2], [null, null, 5]]);
    const text = await cli(['report', 'refusals']);
    assert.match(text.stdout, /gateway refusals .*: 7/);
    assert.equal((await cli(['report', 'refusals', '--hours', '0'])).status, 2);
  });
});

/** RFC 4180, as a spreadsheet reads it. */
function parseCsv(s: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quoted) {
      if (c === '"' && s[i + 1] === '"') (cell += '"'), i++;
      else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') row.push(cell), (cell = '');
    else if (c === '\r' && s[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      i++;
    } else cell += c;
  }
  return rows;
}
