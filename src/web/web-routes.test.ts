/**
 * The portal's routes on Hono answer as the hand-written router did: 405
 * with Allow for a method a path does not take, HEAD with the length and no
 * body, the 404 page with its CSP, HTTP/1.0 without Host served, an
 * unreadable Host or target 400 URL_INVALID.
 *
 * Request bodies on the Hono routes keep their limits: a declared
 * Content-Length over the limit is refused before a byte is read, and a
 * chunked body that never ends is refused at the first chunk past the limit
 * (never buffered whole), on every route that reads a body (form, JSON API,
 * CSR API, EST, OCSP). Defect guarded: a framework's body helpers
 * (arrayBuffer(), json()) read the whole body before anyone looks at its size.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { isSekishoError } from '../errors/index.js';
import { startTestEnrollment, type TestEnrollment } from '../testing/enrollment-server.js';
import { createWebApp } from './app.js';
import { readBody } from './http.js';

const CHUNK = 16 * 1024;

/** A request whose body is endless; `pulled()` says how many bytes were taken from it. */
function endless(headers: Record<string, string> = {}): { req: Request; pulled: () => number } {
  let pulled = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      pulled += CHUNK;
      c.enqueue(new Uint8Array(CHUNK).fill(0x20));
    },
  });
  return { req: new Request('http://127.0.0.1/', { method: 'POST', body, headers, duplex: 'half' } as RequestInit), pulled: () => pulled };
}

test('readBody refuses an endless body at the first chunk past the limit, having read at most the limit and a few chunks', async () => {
  const e = endless();
  await assert.rejects(readBody(e.req, 64 * 1024), (err) => isSekishoError(err) && err.code === 'BODY_TOO_LARGE' && err.kind === 'tooLarge');
  assert.ok(e.pulled() <= 64 * 1024 + 3 * CHUNK, `read ${e.pulled()} bytes`);
});

test('readBody refuses a declared Content-Length over the limit before reading a byte', async () => {
  const e = endless({ 'Content-Length': String(10 * 1024 * 1024) });
  await assert.rejects(readBody(e.req, 64 * 1024), (err) => isSekishoError(err) && err.code === 'BODY_TOO_LARGE');
  assert.ok(e.pulled() <= CHUNK, `read ${e.pulled()} bytes`);
});

test('readBody returns a body at the limit whole', async () => {
  const body = new Uint8Array(64 * 1024).fill(7);
  const got = await readBody(new Request('http://127.0.0.1/', { method: 'POST', body }), 64 * 1024);
  assert.equal(got.length, body.length);
});

describe('the web app over HTTP', () => {
  let t: TestEnrollment;
  let server: Server;
  let port: number;
  before(async () => {
    t = await startTestEnrollment({ rateLimit: { attempts: 1000 } });
    server = createServer(createWebApp({ authority: t.ca, rateLimit: { attempts: 1000 }, log: () => undefined }));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await t.close();
  });

  /** POSTs `total` bytes chunked (no Content-Length), as fast as the server takes them; resolves with the answer. */
  function upload(path: string, type: string, total: number, extra: Record<string, string> = {}): Promise<{ status: number; text: string; connection: string | undefined }> {
    return new Promise((resolve, reject) => {
      const rq = request({ host: '127.0.0.1', port, method: 'POST', path, headers: { 'Content-Type': type, 'Transfer-Encoding': 'chunked', ...extra } }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString(), connection: res.headers.connection }));
      });
      rq.on('error', reject);
      let sent = 0;
      const more = () => {
        while (sent < total) {
          sent += CHUNK;
          if (!rq.write(Buffer.alloc(CHUNK, 0x20))) return void rq.once('drain', more);
        }
        rq.end();
      };
      more();
    });
  }

  test('form, JSON API, CSR API, EST and OCSP answer 413 to an 8 MiB chunked body', async () => {
    const basic = `Basic ${Buffer.from('a:b').toString('base64')}`;
    const cases = [
      { path: '/enroll', type: 'application/x-www-form-urlencoded', text: /data-code="BODY_TOO_LARGE"/ },
      { path: '/api/enroll', type: 'application/json', text: /"code":"BODY_TOO_LARGE"/ },
      { path: '/api/enroll-csr', type: 'application/json', text: /"code":"BODY_TOO_LARGE"/ },
      { path: '/.well-known/est/simpleenroll', type: 'application/pkcs10', text: /^BODY_TOO_LARGE: /, headers: { Authorization: basic } },
      { path: '/ocsp', type: 'application/ocsp-request', text: /^BODY_TOO_LARGE\n$/ },
    ];
    for (const c of cases) {
      const r = await upload(c.path, c.type, 8 * 1024 * 1024, c.headers ?? {});
      assert.equal(r.status, 413, `${c.path}: ${r.text.slice(0, 200)}`);
      assert.match(r.text, c.text, c.path);
    }
  });

  /** One raw request on its own connection; the whole answer as text. */
  function raw(text: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => s.end(text));
      const parts: Buffer[] = [];
      s.on('data', (d: Buffer) => parts.push(d));
      s.on('end', () => resolve(Buffer.concat(parts).toString('latin1')));
      s.on('error', reject);
    });
  }
  const status = (answer: string) => Number(/^HTTP\/1\.[01] (\d{3})/.exec(answer)?.[1]);
  const header = (answer: string, name: string) => new RegExp(`^${name}: (.*)\r$`, 'im').exec(answer)?.[1];

  test('405 carries Allow for the path; HEAD has the length and no body; unknown paths get the 404 page with its CSP', async () => {
    for (const [method, path, allow] of [
      ['POST', '/', 'GET'],
      ['GET', '/enroll', 'POST'],
      ['PUT', '/api/enroll-csr', 'POST'],
      ['DELETE', '/ca-chain.pem', 'GET'],
      ['POST', '/assets/portal.js', 'GET'],
      ['POST', '/crl', 'GET'],
      ['GET', '/ocsp', 'POST, GET'],
    ] as const) {
      const a = await raw(`${method} ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      assert.equal(status(a), 405, `${method} ${path}`);
      assert.equal(header(a, 'Allow'), allow, `${method} ${path}`);
      assert.equal(header(a, 'X-Frame-Options'), 'DENY');
    }
    const head = await raw('HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.equal(status(head), 200);
    assert.ok(Number(header(head, 'Content-Length')) > 1000);
    assert.match(header(head, 'Content-Security-Policy') ?? '', /frame-ancestors 'none'/);
    assert.ok(head.endsWith('\r\n\r\n'), 'no body after the headers');
    for (const path of ['/nothing', '/.well-known/est', '/assets/other.js', '/index.html/']) {
      const a = await raw(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      assert.equal(status(a), 404, path);
      assert.match(header(a, 'Content-Type') ?? '', /text\/html/, path);
      assert.match(header(a, 'Content-Security-Policy') ?? '', /default-src 'none'/, path);
    }
  });

  test('regression: EST answers a method it does not take with 405 and Allow, and HEAD on cacerts as GET (length, no body)', async () => {
    // Before, EST's 405s carried no Allow (RFC 9110 §15.5.6 requires it) and HEAD on cacerts was refused, unlike every other GET path.
    for (const [method, path, allow] of [
      ['POST', '/.well-known/est/cacerts', 'GET'],
      ['PUT', '/.well-known/est/cacerts', 'GET'],
      ['GET', '/.well-known/est/simpleenroll', 'POST'],
      ['HEAD', '/.well-known/est/simplereenroll', 'POST'],
    ] as const) {
      const a = await raw(`${method} ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      assert.equal(status(a), 405, `${method} ${path}`);
      assert.equal(header(a, 'Allow'), allow, `${method} ${path}`);
    }
    const get = await raw('GET /.well-known/est/cacerts HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const head = await raw('HEAD /.well-known/est/cacerts HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.equal(status(get), 200);
    assert.equal(status(head), 200);
    assert.equal(header(head, 'Content-Length'), header(get, 'Content-Length'));
    assert.match(header(head, 'Content-Type') ?? '', /application\/pkcs7-mime/);
    assert.ok(head.endsWith('\r\n\r\n'), 'no body after the headers');
  });

  test('HTTP/1.0 without Host is served; an unreadable Host is 400 URL_INVALID', async () => {
    const a = await raw('GET /healthz HTTP/1.0\r\n\r\n');
    assert.equal(status(a), 200);
    assert.match(a, /\r\n\r\nok\n$/);
    const bad = await raw('GET / HTTP/1.1\r\nHost: a/b@c\r\nConnection: close\r\n\r\n');
    assert.equal(status(bad), 400);
    assert.match(bad, /URL_INVALID/);
  });
});
