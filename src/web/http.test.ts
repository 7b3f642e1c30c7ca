/**
 * The web edge maps an error to an HTTP status by its kind alone (no table
 * keyed by code strings), keeps the operator's detail of `internal` and
 * `unavailable` errors off the wire, and says when to retry a rate-limited
 * attempt. Defects guarded: 17 codes mapped by string, `retryAfter` bolted on
 * with Object.assign, "needs SEKISHO_PASSPHRASE" shown to a clinic.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { ERROR_KINDS, SekishoError, type ErrorKind } from '../errors/index.js';
import { CertificateAuthority } from '../ca/index.js';
import { needCommand } from '../testing/peers.js';
import { runPeer, startTestEnrollment, type TestEnrollment } from '../testing/enrollment-server.js';
import { HTTP_STATUS, httpStatus, kindOfStatus, publicError, refuseCrossSite } from './http.js';
import { createWebApp } from './app.js';
import { EXIT_CODE } from '../cli/run.js';

const SRC = fileURLToPath(new URL('../../../src/', import.meta.url));
const CONSTRUCTORS: Record<string, ErrorKind> = Object.fromEntries(ERROR_KINDS.map((k) => [k, k]));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [join(dir, e.name)] : [],
  );
}

/** Every (kind, code) thrown in src/: the constructors' first arguments (both arms of a `cond ? 'A' : 'B'` too), `new SekishoError('kind', 'CODE'`, and enrollment's `refuse('CODE'` (forbidden). */
function thrownCodes(): { file: string; kind: ErrorKind; code: string }[] {
  const found: { file: string; kind: ErrorKind; code: string }[] = [];
  const ctor = new RegExp(`\\b(${Object.keys(CONSTRUCTORS).join('|')})\\(\\s*([^,]*?'[A-Z][A-Z0-9_]+'[^,]*?),`, 'g');
  for (const file of sources(SRC)) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(ctor)) for (const c of m[2]!.matchAll(/'([A-Z][A-Z0-9_]+)'/g)) found.push({ file, kind: CONSTRUCTORS[m[1]!]!, code: c[1]! });
    for (const m of text.matchAll(/new SekishoError\('([a-zA-Z]+)', '([A-Z][A-Z0-9_]+)'/g)) found.push({ file, kind: m[1] as ErrorKind, code: m[2]! });
    if (file.endsWith('enrollment.ts')) for (const m of text.matchAll(/\brefuse\('([A-Z][A-Z0-9_]+)'/g)) found.push({ file, kind: 'forbidden', code: m[1]! });
  }
  return found;
}

describe('error kind → HTTP status, once', () => {
  const thrown = thrownCodes();

  test('the scan of src/ finds the codes (the test is not vacuous)', () => {
    assert.ok(thrown.length > 200, `found only ${thrown.length} throw sites`);
    assert.ok(thrown.every((t) => ERROR_KINDS.includes(t.kind)), 'every constructor is a kind');
  });

  test('every error code thrown in src/ maps to a status by its kind: another code of the same kind gets the same status', () => {
    for (const { file, kind, code } of thrown) {
      const status = httpStatus(new SekishoError(kind, code, 'x'));
      assert.ok(Number.isInteger(status) && status >= 400 && status < 600, `${code} (${file}) → ${status}`);
      assert.equal(status, httpStatus(new SekishoError(kind, 'SOME_OTHER_CODE', 'x')), `${code}: status decided by the code string`);
      assert.ok([1, 2].includes(EXIT_CODE[kind]), `${code}: exit status by kind`);
    }
  });

  test('a code means one status wherever it is thrown', () => {
    const byCode = new Map<string, Set<number>>();
    for (const { kind, code } of thrown) byCode.set(code, (byCode.get(code) ?? new Set()).add(HTTP_STATUS[kind]));
    const split = [...byCode].filter(([, s]) => s.size > 1).map(([c, s]) => `${c}: ${[...s].join('/')}`);
    assert.deepEqual(split, []);
  });

  // The statuses a clinic's browser or a device's EST client acts on, read from where the code is thrown.
  const cases: { code: string; status: number }[] = [
    { code: 'RATE_LIMITED', status: 429 },
    { code: 'NOTICE_LOCKED', status: 423 },
    { code: 'NOTICE_EXPIRED', status: 410 },
    { code: 'NOTICE_USED', status: 410 },
    { code: 'NOTICE_REVOKED', status: 410 },
    { code: 'NOTICE_NOT_RECOGNIZED', status: 401 },
    { code: 'BODY_TOO_LARGE', status: 413 },
    { code: 'CONTENT_TYPE_UNSUPPORTED', status: 415 },
    { code: 'CA_LOCKED', status: 503 },
    { code: 'STORE_UNREACHABLE', status: 503 },
    { code: 'STORE_BUSY', status: 503 },
    { code: 'FACILITY_SUSPENDED', status: 403 },
    { code: 'CLIENT_CERT_REQUIRED', status: 403 },
    { code: 'CLIENT_CERT_REVOKED', status: 403 },
    { code: 'CLIENT_CERT_EXPIRED', status: 403 },
    { code: 'CLIENT_CERT_UNTRUSTED', status: 403 },
    { code: 'CLIENT_CERT_UNKNOWN', status: 403 },
    { code: 'CLIENT_CERT_INVALID', status: 403 },
    { code: 'REENROLL_SUBJECT_MISMATCH', status: 400 },
  ];
  for (const c of cases) {
    test(`${c.code} is thrown with a kind that answers ${c.status}`, () => {
      const sites = thrown.filter((t) => t.code === c.code);
      assert.ok(sites.length > 0, `${c.code} is thrown somewhere`);
      for (const s of sites) assert.equal(HTTP_STATUS[s.kind], c.status, `${c.code} in ${s.file} is ${s.kind}`);
    });
  }

  test('no string-keyed code → status (or status → kind) table is left in web/ or cli/', () => {
    for (const file of [...sources(join(SRC, 'web')), ...sources(join(SRC, 'cli'))]) {
      const text = readFileSync(file, 'utf8');
      assert.doesNotMatch(text, /Record<string, number>\s*=\s*\{\s*[A-Z_]+:/, file);
      assert.doesNotMatch(text, /Record<number, ErrorKind>/, file);
      assert.doesNotMatch(text, /retryAfter\?/, file);
    }
  });

  test('kindOfStatus inverts the table for our own API clients (sekisho enroll)', () => {
    for (const k of ERROR_KINDS) assert.equal(HTTP_STATUS[kindOfStatus(HTTP_STATUS[k])], HTTP_STATUS[k]);
    assert.equal(kindOfStatus(502), 'unavailable');
  });

  test('internal and unavailable errors show a generic message (ja + en); the detail goes to the server log', () => {
    for (const e of [
      new SekishoError('unavailable', 'CA_LOCKED', 'the CA key is locked; this command needs SEKISHO_PASSPHRASE'),
      new SekishoError('internal', 'SERIAL_STATE', 'serial table at /srv/sekisho/db is odd'),
      new Error('ENOENT /srv/sekisho/secret'),
    ]) {
      const logged: Record<string, unknown>[] = [];
      const p = publicError(e, (_msg, f) => logged.push(f));
      assert.ok(p.status === 500 || p.status === 503);
      assert.ok(p.ja && p.message.length > 20, 'a message with a next step, in both languages');
      assert.doesNotMatch(JSON.stringify(p), /SEKISHO_PASSPHRASE|\/srv|CA_LOCKED|SERIAL_STATE/);
      assert.equal(logged.length, 1);
      assert.match(JSON.stringify(logged[0]), /SEKISHO_PASSPHRASE|\/srv/);
    }
  });

  test('a rate-limited error carries its wait as a typed field, and the edge turns it into Retry-After', () => {
    const p = publicError(new SekishoError('rateLimited', 'RATE_LIMITED', 'wait', { retryAfterSeconds: 12.2 }));
    assert.deepEqual([p.status, p.headers['Retry-After']], [429, '13']);
  });
});

describe('a locked CA behind the portal and EST', () => {
  let t: TestEnrollment;
  let locked: CertificateAuthority;
  let server: Server;
  let base: string;
  const logged: string[] = [];
  before(async () => {
    t = await startTestEnrollment({ rateLimit: { attempts: 1000 } });
    locked = await CertificateAuthority.open({ home: t.home });
    server = createServer(createWebApp({ authority: locked, rateLimit: { attempts: 1000 }, log: (msg, f) => logged.push(JSON.stringify({ msg, ...f })) }));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((r) => server.close(r));
    await locked.close();
    await t.close();
  });

  const noPassphraseHint = (text: string) => {
    assert.doesNotMatch(text, /SEKISHO_PASSPHRASE|passphrase|CA_LOCKED/i);
  };

  test('the JSON API answers 503 with a generic message and the operator detail is logged', async () => {
    const n = await t.notice();
    logged.length = 0;
    const r = await fetch(`${base}/api/enroll`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ requestId: n.requestId, referenceId: n.referenceId, password: 'Kinkyu-Pass-8812' }) });
    const text = await r.text();
    assert.equal(r.status, 503, text);
    const body = JSON.parse(text) as { error: { code: string; message: string; ja: string } };
    assert.equal(body.error.code, 'SERVICE_UNAVAILABLE');
    assert.ok(body.error.ja);
    noPassphraseHint(text);
    assert.ok(logged.some((l) => l.includes('SEKISHO_PASSPHRASE') && l.includes('CA_LOCKED')), logged.join('\n'));
  });

  test('the form answers 503 with the generic message on the page', async () => {
    const n = await t.notice();
    const r = await fetch(`${base}/enroll`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ request_id: n.requestId, reference_id: n.referenceId, password: 'Kinkyu-Pass-8812', password_confirm: 'Kinkyu-Pass-8812' }).toString() });
    const text = await r.text();
    assert.equal(r.status, 503);
    assert.match(text, /SERVICE_UNAVAILABLE/);
    noPassphraseHint(text);
  });

  test('EST simpleenroll answers 503 with the generic message', async (tc) => {
    if (!needCommand(tc, 'openssl')) return;
    const csr = await runPeer('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', '/dev/null', '-subj', '/CN=device', '-outform', 'PEM']);
    assert.equal(csr.status, 0, csr.stderr);
    const n = await t.notice();
    const r = await fetch(`${base}/.well-known/est/simpleenroll`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/pkcs10', Authorization: `Basic ${Buffer.from(`${n.requestId}:${n.referenceId}`).toString('base64')}` },
      body: csr.stdout,
    });
    const text = await r.text();
    assert.equal(r.status, 503, text);
    assert.match(text, /SERVICE_UNAVAILABLE/);
    noPassphraseHint(text);
  });

  test('rate-limited answers carry Retry-After on every surface (JSON, form, EST)', async () => {
    const strict = createServer(createWebApp({ authority: locked, rateLimit: { attempts: 1, windowSeconds: 600 }, log: () => undefined }));
    await new Promise<void>((r) => strict.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(strict.address() as AddressInfo).port}`;
    try {
      const json = () => fetch(`${url}/api/enroll`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"requestId":"x","referenceId":"y","password":"z"}' });
      await (await json()).text();
      const answers = [
        await json(),
        await fetch(`${url}/enroll`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'request_id=x' }),
        await fetch(`${url}/.well-known/est/simpleenroll`, { method: 'POST', headers: { 'Content-Type': 'application/pkcs10', Authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }, body: 'MIIB' }),
      ];
      for (const a of answers) {
        const text = await a.text();
        assert.equal(a.status, 429, text);
        assert.match(text, /RATE_LIMITED/);
        assert.ok(Number(a.headers.get('retry-after')) > 0, `Retry-After on ${a.url}`);
      }
    } finally {
      await new Promise((r) => strict.close(r));
    }
  });
});

test('cross-site POSTs: Sec-Fetch-Site decides when sent; else Origin must be the request\'s host or, behind a proxy that rewrites Host, the portal\'s published address', () => {
  const req = (headers: Record<string, string>) => new Request('https://portal.internal:8443/enroll', { method: 'POST', headers });
  const refused = (headers: Record<string, string>, published?: string) => {
    try {
      refuseCrossSite(req(headers), published);
      return false;
    } catch (e) {
      return e instanceof SekishoError && e.code === 'CROSS_SITE_REQUEST';
    }
  };
  assert.equal(refused({ 'sec-fetch-site': 'same-origin', origin: 'https://evil.example' }), false);
  assert.equal(refused({ 'sec-fetch-site': 'cross-site' }), true);
  assert.equal(refused({ 'sec-fetch-site': 'same-site' }), true);
  assert.equal(refused({}), false, 'no browser headers: a client that is not a browser');
  assert.equal(refused({ host: 'portal.internal:8443', origin: 'https://portal.internal:8443' }), false);
  assert.equal(refused({ host: 'portal.internal:8443', origin: 'null' }), true);
  assert.equal(refused({ host: 'portal.internal:8443', origin: 'https://evil.example' }), true);
  // regression: an older browser (Origin, no Sec-Fetch-Site) behind a proxy that rewrites Host was refused on the portal's own page.
  assert.equal(refused({ host: 'portal.internal:8443', origin: 'https://portal.example.jp' }, 'https://portal.example.jp/'), false);
  assert.equal(refused({ host: 'portal.internal:8443', origin: 'https://portal.example.jp.evil.example' }, 'https://portal.example.jp/'), true);
  assert.equal(refused({ host: 'portal.internal:8443', origin: 'http://portal.example.jp' }, 'https://portal.example.jp/'), true, 'another scheme is another origin');
});
