/**
 * Renewal campaigns on SQLite and PostgreSQL: the expiring listing's
 * window edges, and two campaigns run at once (two CA processes' worth of
 * connections on PostgreSQL) never give a facility two notices: the second
 * finds the first's notice inside its own transaction and skips.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { CertificateAuthority, initAuthority, parseExpiryWindow } from './index.js';
import { SekishoError } from '../errors/index.js';
import { facilityNumber } from '../testing/gateway-fixture.js';
import { needPeer } from '../testing/peers.js';
import { STORE_TARGETS, tempDir } from '../testing/stores.js';

const PASS = 'campaign-test-passphrase';
const X = facilityNumber('011011371');
const Y = facilityNumber('131234567');

describe('expiry windows', () => {
  for (const [input, days] of [['30d', 30], ['60', 60], [' 90d ', 90], ['1d', 1], ['731d', 731]] as const) test(`"${input}" is ${days} days`, () => assert.equal(parseExpiryWindow(input), days));
  for (const bad of ['0d', '732d', '60x', '-5d', 'd', '', '6 0d', '１０d']) {
    test(`"${bad}" is EXPIRY_WINDOW_INVALID`, () => assert.throws(() => parseExpiryWindow(bad), (e) => e instanceof SekishoError && e.code === 'EXPIRY_WINDOW_INVALID'));
  }
});

for (const target of STORE_TARGETS) {
  describe(`renewal campaigns on ${target.name}`, () => {
    test('concurrent campaigns: each facility gets exactly one notice; the other campaign skips it as open-notice', async (t) => {
      if (!needPeer(t, target.available, 'PostgreSQL (SEKISHO_TEST_POSTGRES_URL)')) return;
      const url = await target.fresh();
      const home = join(tempDir(), 'home');
      await initAuthority({ home, passphrase: PASS, ...(url ? { db: url } : {}) });
      const a = await CertificateAuthority.open({ home });
      const b = await CertificateAuthority.open({ home });
      try {
        await a.unlock(PASS);
        for (const n of [X, Y]) {
          await a.addFacility({ number: n, name: `医院${n}` }, 'test');
          await a.issueWithNewKey({ profile: 'facility', facilityNumber: n, validityDays: 20, keyType: 'ecdsa-p256', via: 'test', actor: 'test' });
        }
        // A certificate ending after the window is not listed; one ending inside it is, with its days left.
        assert.deepEqual((await a.campaigns.expiring({ days: 19 })).length, 0);
        assert.deepEqual((await a.campaigns.expiring({ days: 20 })).map((c) => [c.facilityNumber, c.daysLeft]).sort(), [[X, 19], [Y, 19]]);
        const [r1, r2] = await Promise.all([a.campaigns.run({ days: 30, actor: 'operator:a' }), b.campaigns.run({ days: 30, actor: 'operator:b' })]);
        assert.equal(r1.notices.length + r2.notices.length, 2, 'two notices in all');
        for (const n of [X, Y]) {
          const open = (await a.notices.list({ facilityNumber: n })).filter((x) => x.state === 'active');
          assert.equal(open.length, 1, `one notice for ${n}`);
        }
        const skipped = [...r1.skipped, ...r2.skipped];
        assert.equal(skipped.length, 2);
        assert.ok(skipped.every((s) => s.reason === 'open-notice'), JSON.stringify(skipped));
        assert.equal((await a.audit.search({ action: 'notice.campaign' })).length, 2);
        // Withdrawing a campaign revokes its notices in one step; its facilities are eligible again.
        const full = r1.notices.length ? r1 : r2;
        await a.campaigns.withdraw(full, 'operator:a', 'TEST');
        assert.equal((await a.campaigns.plan({ days: 30 })).selected.length, full.notices.length);
      } finally {
        await a.close();
        await b.close();
      }
    });
  });
}
