/**
 * Re-download within a notice's window (a clinic that forgot its
 * certificate password downloads again), over real HTTPS on every path a
 * notice is used: the page's in-browser key mode (/api/enroll-csr), the
 * form (server-made key), EST simpleenroll, /api/enroll (`sekisho enroll`).
 * Each download revokes the one before as superseded at once: openssl's
 * OCSP client and the CRL say so, and a real gateway refuses it. The
 * download after the last is refused with NOTICE_USED; the lock after
 * wrong reference IDs still holds.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { needCommand } from '../testing/peers.js';
import { fetchTls, runPeer as run, startTestEnrollment, TEST_PASSPHRASE, type TestEnrollment } from '../testing/enrollment-server.js';
import { tempDir } from '../testing/stores.js';
import { jsonLogger, openGateway, parseGatewayConfig } from '../gateway/index.js';
import { echoUpstream } from '../testing/gateway-fixture.js';

const PASSWORD = 'Wasureta-Pass-4471';
const OCSP_GOOD = /(: |\n)good\n/;

function clients(t: TestEnrollment, dir: string) {
  const base = t.url.replace(/\/$/, '');
  let n = 0;
  const post = (path: string, type: string, body: string, headers: Record<string, string> = {}) =>
    fetchTls(`${base}${path}`, { ca: t.rootPem, method: 'POST', headers: { 'Content-Type': type, ...headers }, body });
  async function keyAndCsr(): Promise<{ key: string; csrPem: string; csrDer: Buffer }> {
    const k = join(dir, `k${++n}`);
    const r = await run('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${k}.key`, '-subj', '/CN=clinic-pc', '-out', `${k}.csr`]);
    assert.equal(r.status, 0, r.stderr);
    const csrPem = readFileSync(`${k}.csr`, 'utf8');
    return { key: `${k}.key`, csrPem, csrDer: Buffer.from(csrPem.replace(/-----[^-]+-----|\s/g, ''), 'base64') };
  }
  return {
    base,
    /** The page's in-browser mode: the key stays here, only the CSR goes (openssl stands in for WebCrypto). */
    async viaCsr(ids: { requestId: string; referenceId: string }) {
      const k = await keyAndCsr();
      const r = await post('/api/enroll-csr', 'application/json', JSON.stringify({ requestId: ids.requestId, referenceId: ids.referenceId, csr: k.csrPem }));
      const json = JSON.parse(r.text) as Record<string, any>;
      if (r.status !== 200) return { status: r.status, json };
      const cert = join(dir, `c${++n}.pem`);
      writeFileSync(cert, json.certificate);
      return { status: r.status, json, cert, key: k.key };
    },
    /** The form (no script): the server makes the key; the result page carries the files. */
    async viaForm(ids: { requestId: string; referenceId: string }) {
      const r = await post('/enroll', 'application/x-www-form-urlencoded', new URLSearchParams({ request_id: ids.requestId, reference_id: ids.referenceId, password: PASSWORD, password_confirm: PASSWORD, key_type: 'ecdsa-p256' }).toString());
      return { status: r.status, html: r.text, code: /data-code="([A-Z_]+)"/.exec(r.text)?.[1] };
    },
    /** EST simpleenroll with the notice's IDs as HTTP Basic (curl). */
    async viaEst(ids: { requestId: string; referenceId: string }) {
      const k = await keyAndCsr();
      const r = await run('curl', ['-s', '-o', '-', '-w', '\n%{http_code}', '--cacert', t.rootFile, '-u', `${ids.requestId}:${ids.referenceId}`, '-H', 'Content-Type: application/pkcs10', '--data-binary', '@-', `${base}/.well-known/est/simpleenroll`], k.csrDer.toString('base64'));
      const lines = r.stdout.trim().split('\n');
      const status = Number(lines.pop());
      if (status !== 200) return { status, text: lines.join('\n') };
      const cert = join(dir, `c${++n}.pem`);
      const p = await run('bash', ['-c', `base64 -d | openssl pkcs7 -inform DER -print_certs -out "${cert}"`], lines.join('\n'));
      assert.equal(p.status, 0, p.stderr);
      return { status, cert, key: k.key };
    },
    /** /api/enroll, as `sekisho enroll` calls it. */
    async viaApi(ids: { requestId: string; referenceId: string }) {
      const r = await post('/api/enroll', 'application/json', JSON.stringify({ requestId: ids.requestId, referenceId: ids.referenceId, password: PASSWORD, keyType: 'ecdsa-p256' }));
      return { status: r.status, json: JSON.parse(r.text) as Record<string, any> };
    },
    ocsp: (cert: string) => run('openssl', ['ocsp', '-issuer', t.chainFile, '-cert', cert, '-CAfile', t.rootFile, '-url', `${base}/ocsp`]),
  };
}

const serialOf = (file: string) => new X509Certificate(readFileSync(file)).serialNumber;

describe('re-download within a notice window', () => {
  test('three downloads on three paths: the first two are revoked as superseded (OCSP, CRL, a real gateway), the fourth is refused NOTICE_USED', async (tc) => {
    if (!needCommand(tc, 'curl') || !needCommand(tc, 'openssl')) return;
    const t = await startTestEnrollment({ rateLimit: { attempts: 1000 } });
    const dir = tempDir('sekisho-redownload-');
    const c = clients(t, dir);
    const upstream = await echoUpstream();
    const gw = await openGateway(
      parseGatewayConfig({ home: t.home, admin: '127.0.0.1:0', listeners: [{ name: 'web', mode: 'http', listen: '127.0.0.1:0', routes: [{ path: '/', upstream: `http://127.0.0.1:${upstream.port}`, allow: { anyone: true } }] }] }),
      { passphrase: async () => TEST_PASSPHRASE, log: jsonLogger('error', () => undefined), watch: false },
    );
    try {
      const gwPort = gw.gateway.addresses()[0]!.port;
      const throughGateway = async (x: { cert: string; key: string }) => {
        const withChain = `${x.cert}.chain.pem`;
        writeFileSync(withChain, readFileSync(x.cert, 'utf8').replace(/-----END CERTIFICATE-----[\s\S]*$/, '-----END CERTIFICATE-----\n') + readFileSync(t.chainFile, 'utf8'));
        const r = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', t.chainFile, '--cert', withChain, '--key', x.key, `https://localhost:${gwPort}/`]);
        return Number(r.stdout.trim());
      };
      const n = await t.notice();
      assert.equal(n.maxDownloads, 3);

      // 1: the page's in-browser key mode. Nothing superseded; two left.
      const a = await c.viaCsr(n);
      assert.equal(a.status, 200, JSON.stringify(a.json));
      assert.deepEqual([a.json.download.number, a.json.download.max, a.json.download.left, a.json.download.superseded], [1, 3, 2, undefined]);
      assert.match(a.json.download.ja, /あと 2 回/);
      assert.match(a.json.backup.ja.join(''), /外部媒体[\s\S]*削除[\s\S]*新しい端末/);
      assert.match(a.json.thumbprints, /バックアップ/);
      assert.equal(await throughGateway(a as { cert: string; key: string }), 200);
      const serialA = serialOf(a.cert!);

      // 2: the form (server-made key): the result page says which certificate no longer works and how many are left.
      const b = await c.viaForm(n);
      assert.equal(b.status, 200, b.html.slice(0, 400));
      const box = /<div class="warn" id="redemption"[^>]*data-left="(\d)" data-superseded="([0-9a-f]+)"[^>]*><p class="ja">([^<]+)<\/p><p class="en">([^<]+)<\/p>/.exec(b.html);
      assert.ok(box, 'the result page has the superseded notice');
      assert.equal(box[1], '1');
      assert.equal(box[2]!.toUpperCase(), serialA.toUpperCase());
      assert.match(box[3]!, /失効しました。もう使えません/);
      assert.match(box[4]!, /revoked and no longer works[\s\S]*1 more is possible/);
      assert.match(b.html, /id="backup"[\s\S]*USBメモリ[\s\S]*Back the certificate file/);
      const serialB = /data-serial="([0-9a-f]+)"/.exec(b.html)![1]!;

      // A is revoked at once, reason superseded: openssl's OCSP client and the gateway (following the store) see it.
      const oA = await c.ocsp(a.cert!);
      assert.match(oA.stdout, /(: |\n)revoked\n[\s\S]*Reason: superseded/, oA.stdout + oA.stderr);
      let seen = 0;
      for (let i = 0; i < 60 && (seen = await throughGateway(a as { cert: string; key: string })) === 200; i++) await new Promise((res) => setTimeout(res, 500));
      assert.notEqual(seen, 200, 'the gateway still lets the superseded certificate through');

      // 3: EST simpleenroll with the same letter: B is superseded in turn.
      const cc = await c.viaEst(n);
      assert.equal(cc.status, 200, cc.text);
      assert.match((await c.ocsp(cc.cert!)).stdout, OCSP_GOOD);
      assert.equal(await throughGateway(cc as { cert: string; key: string }), 200);
      const recB = await t.ca.certificate(serialB);
      assert.deepEqual([recB?.status, recB?.revocationReason], ['revoked', 4]);

      // 4: /api/enroll (sekisho enroll): refused, with a message the clinic can act on; nothing issued.
      const before = (await t.ca.listCertificates()).length;
      const d = await c.viaApi(n);
      assert.equal(d.status, 410);
      assert.equal(d.json.error.code, 'NOTICE_USED');
      assert.match(d.json.error.ja, /上限 3 回[\s\S]*新しい通知書/);
      assert.match(d.json.error.message, /ask the network operator for a new notice/);
      assert.equal((await t.ca.listCertificates()).length, before);
      const form4 = await c.viaForm(n);
      assert.deepEqual([form4.status, form4.code], [410, 'NOTICE_USED']);

      // The CRL the web server serves lists A and B, reason superseded, and not the last one.
      const crlFile = join(dir, 'web.crl');
      const got = await run('curl', ['-s', '--fail', '--cacert', t.rootFile, '-o', crlFile, `${c.base}/crl`]);
      assert.equal(got.status, 0, got.stderr);
      const crl = (await run('openssl', ['crl', '-inform', 'DER', '-in', crlFile, '-noout', '-text'])).stdout;
      for (const s of [serialA, serialB]) assert.match(crl, new RegExp(`Serial Number: 0*${s}[\\s\\S]*?CRL Reason Code:\\s*Superseded`, 'i'));
      assert.ok(!new RegExp(`Serial Number: 0*${serialOf(cc.cert!)}`, 'i').test(crl));
      assert.equal(await throughGateway(cc as { cert: string; key: string }), 200, 'the last download works');
      assert.deepEqual((await t.ca.audit.verify()).problems, []);
    } finally {
      await gw.close(1000);
      upstream.server.close();
      await t.close();
    }
  });

  test('with notices.maxDownloads 1 in the config the second download is refused; wrong reference IDs still lock a notice that has downloaded', async (tc) => {
    if (!needCommand(tc, 'openssl')) return;
    const t = await startTestEnrollment({ rateLimit: { attempts: 1000 }, notices: { maxDownloads: 1 } });
    const c = clients(t, tempDir('sekisho-redownload-'));
    try {
      const once = await t.notice();
      assert.equal(once.maxDownloads, 1);
      const first = await c.viaForm(once);
      assert.equal(first.status, 200);
      assert.match(first.html, /id="redemption"[^>]*data-left="0"[\s\S]*使用済みになりました/);
      const second = await c.viaCsr(once);
      assert.equal(second.status, 410);
      assert.equal(second.json.error.code, 'NOTICE_USED');
      assert.match(second.json.error.ja, /使用済み[\s\S]*新しい通知書/);

      // A notice may still be given more downloads of its own; after one download, wrong reference IDs lock it all the same.
      const n = await t.notice({ maxDownloads: 3 });
      const wrong = { requestId: n.requestId, referenceId: (await t.notice()).referenceId };
      assert.equal((await c.viaForm(n)).status, 200);
      for (let i = 1; i <= 5; i++) {
        const r = await c.viaForm(wrong);
        assert.equal(r.code, i < 5 ? 'NOTICE_REFERENCE_WRONG' : 'NOTICE_LOCKED', `attempt ${i}`);
      }
      const locked = await c.viaApi(n);
      assert.deepEqual([locked.status, locked.json.error.code], [423, 'NOTICE_LOCKED']);
      const listed = (await t.ca.notices.list()).find((x) => x.id === n.id)!;
      assert.deepEqual([listed.state, listed.downloads, listed.failures], ['locked', 1, 5]);
    } finally {
      await t.close();
    }
  });
});
