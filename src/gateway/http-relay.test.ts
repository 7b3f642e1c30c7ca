/**
 * The HTTP relay (http-forwarder.ts) against request smuggling and framing
 * trouble, through its own listener without TLS (testing/relay-harness.ts)
 * and a raw upstream that records every byte: what a client sends that
 * could be framed two ways is refused before anything reaches the upstream;
 * what reaches the upstream is one request per request, with the gateway's
 * Host and framing; answers come back in order and complete, or the
 * connection closes.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { queryObjects } from 'node:v8';
import { MessageParser } from './http-head-parser.js';
import { relayHarness, scriptedUpstream, statuses, talk, type RelayHarness, type ScriptedUpstream } from '../testing/relay-harness.js';

let up: ScriptedUpstream;
let relay: RelayHarness;

/** Answers each complete request head (and its Content-Length body) with 200 "ok", keeping the connection. */
function okScript(sofar: string, socket: Socket): void {
  const answered = (socket as Socket & { answered?: number }).answered ?? 0;
  const heads = sofar.split('\r\n\r\n').length - 1;
  for (let i = answered; i < heads; i++) socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
  (socket as Socket & { answered?: number }).answered = heads;
}

before(async () => {
  up = await scriptedUpstream();
  relay = await relayHarness(up.port, { headersTimeoutMs: 1500 });
});
after(async () => {
  await relay.close();
  await up.close();
});
beforeEach(async () => {
  up.script = okScript;
  // Each test on fresh upstream connections: a script sees only its own test's bytes.
  await up.dropConnections();
});

const upstreamBytes = () => up.received.join('');

describe('the relay refuses what could be framed two ways, and nothing reaches the upstream', () => {
  const cases: [string, string, number][] = [
    ['Content-Length beside Transfer-Encoding (CL.TE)', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
    ['Transfer-Encoding beside Content-Length (TE.CL)', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n', 400],
    ['two Content-Length fields', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc', 400],
    ['Content-Length with a sign', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc', 400],
    ['Content-Length with a space inside', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 3\r\n\r\nabc', 400],
    ['Content-Length in hex', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x3\r\n\r\nabc', 400],
    ['Transfer-Encoding gzip (not chunked last)', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nabc', 400],
    ['Transfer-Encoding chunked, gzip', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n', 400],
    ['Transfer-Encoding twice', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
    ['Transfer-Encoding gzip, chunked (a coding the gateway does not forward)', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n', 501],
    ['obs-fold (a header line starting with a space)', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n X-Sekisho-Facility-Number: 1\r\n\r\n', 400],
    ['bare LF line ends', 'GET / HTTP/1.1\nHost: a\n\n', 400],
    ['a bare CR in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\rX-B: 2\r\n\r\n', 400],
    ['NUL in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\x002\r\n\r\n', 400],
    ['a space before the colon', 'GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n', 400],
    ['a space in a field name', 'GET / HTTP/1.1\r\nHost: a\r\nX A: 1\r\n\r\n', 400],
    ['a chunk size with a sign', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n', 400],
    ['a head over 16 KiB', `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`, 431],
    ['more than 2000 header fields', `GET / HTTP/1.1\r\nHost: a\r\n${'a:b\r\n'.repeat(2100)}\r\n`, 431],
    ['HTTP/2.0 in a request line', 'GET / HTTP/2.0\r\nHost: a\r\n\r\n', 505],
    ['CONNECT', 'CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['an absolute-form target', 'GET http://127.0.0.1:22/ HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['an Expect other than 100-continue', 'POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\na', 417],
  ];
  for (const [name, bytes, status] of cases) {
    test(`${name}: ${status}, the connection closed, no byte to the upstream`, async () => {
      const before = upstreamBytes().length;
      const r = await talk(relay.port, [bytes]);
      assert.deepEqual(statuses(r.text), [status], r.text);
      assert.match(r.text, /\r\nconnection: close\r\n/i);
      assert.equal(r.closed, true);
      assert.equal(upstreamBytes().length, before, upstreamBytes().slice(before));
    });
  }
});

describe('what reaches the upstream', () => {
  test('pipelined requests: answered in order, each forwarded once with the gateway\'s one Host and without the client\'s identity headers', async () => {
    const before = up.received.length;
    const one = (p: string) => `GET ${p} HTTP/1.1\r\nHost: evil.example\r\nHost: other\r\nX-Sekisho-Facility-Number: 9999999999\r\nX_Sekisho_Cert_Serial: ff\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n`;
    const r = await talk(relay.port, [one('/a') + one('/b') + one('/c')], { until: (t) => statuses(t).length === 3 });
    assert.deepEqual(statuses(r.text), [200, 200, 200]);
    const got = up.received.slice(before).join('');
    assert.deepEqual([...got.matchAll(/^GET (\S+) HTTP\/1\.1\r\n/gm)].map((m) => m[1]), ['/a', '/b', '/c']);
    assert.equal([...got.matchAll(/^host:/gim)].length, 3, 'one Host per request');
    assert.equal([...got.matchAll(/^host: 127\.0\.0\.1:\d+\r$/gim)].length, 3);
    assert.doesNotMatch(got, /evil|other|9999999999|x_sekisho|10\.0\.0\.1|\r\nff\r\n/i);
    assert.equal([...got.matchAll(/^x-sekisho-facility-number: 0110113712\r$/gm)].length, 3);
  });

  test('a chunked request goes on chunked with its data; its trailers do not', async () => {
    let body = '';
    up.script = (sofar, s) => {
      if (sofar.endsWith('0\r\n\r\n')) {
        body = sofar.slice(sofar.indexOf('\r\n\r\n') + 4);
        s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      }
    };
    const r = await talk(relay.port, ['POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n', '2\r\nde\r\n0\r\nX-Sekisho-Facility-Number: 9\r\nX-Trailer: t\r\n\r\n'], { until: (t) => t.endsWith('ok'), gapMs: 50 });
    assert.deepEqual(statuses(r.text), [200]);
    // Decoded: chunk after chunk to the last one, nothing after it.
    let data = '';
    let rest = body;
    for (;;) {
      const m = /^([0-9a-f]+)\r\n/.exec(rest);
      assert.ok(m, `chunk framing: ${JSON.stringify(body)}`);
      const n = parseInt(m[1]!, 16);
      rest = rest.slice(m[0].length);
      if (n === 0) break;
      data += rest.slice(0, n);
      assert.equal(rest.slice(n, n + 2), '\r\n');
      rest = rest.slice(n + 2);
    }
    assert.equal(data, 'abcde');
    assert.equal(rest, '\r\n', 'no trailer');
    assert.doesNotMatch(body, /X-Trailer|X-Sekisho|ext=1/i);
  });

  test('a Content-Length body goes on as is, with one Content-Length', async () => {
    let got = '';
    up.script = (sofar, s) => {
      if (sofar.endsWith('hello')) {
        got = sofar;
        s.write('HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n');
      }
    };
    const r = await talk(relay.port, ['PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length:  5 \r\n\r\nhel', 'lo'], { until: (t) => statuses(t).length === 1 && t.includes('\r\n\r\n'), gapMs: 50 });
    assert.deepEqual(statuses(r.text), [201]);
    assert.equal([...got.matchAll(/^content-length: 5\r$/gim)].length, 1, got);
    assert.doesNotMatch(got, /transfer-encoding/i);
  });

  test('bytes after a request with Connection: close are not forwarded', async () => {
    const before = upstreamBytes().length;
    const r = await talk(relay.port, ['GET /first HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n']);
    assert.deepEqual(statuses(r.text), [200]);
    assert.match(r.text, /\r\nconnection: close\r\n/i);
    assert.equal(r.closed, true);
    assert.doesNotMatch(upstreamBytes().slice(before), /smuggled/);
  });

  test('an Expect: 100-continue request gets the gateway\'s 100, then the upstream\'s answer; the upstream\'s own 1xx are not forwarded', async () => {
    up.script = (sofar, s) => {
      if (sofar.endsWith('abc')) s.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
    };
    const c = await talk(relay.port, ['POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n', 'abc'], { until: (t) => t.endsWith('ok'), gapMs: 100 });
    assert.deepEqual(statuses(c.text), [100, 200], c.text);
    assert.doesNotMatch(c.text, /Early Hints|link:/);
  });
});

describe('what comes back from the upstream', () => {
  test('HEAD, 204 and 304 carry no body, and the next request on the connection is read right', async () => {
    up.script = (sofar, s) => {
      const n = sofar.split('\r\n\r\n').length - 1;
      const seen = (s as Socket & { n?: number }).n ?? 0;
      (s as Socket & { n?: number }).n = n;
      const answers = ['HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n', 'HTTP/1.1 204 No Content\r\n\r\n', 'HTTP/1.1 304 Not Modified\r\ncontent-length: 9\r\n\r\n', 'HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nlast'];
      for (let i = seen; i < n; i++) s.write(answers[i]!);
    };
    const r = await talk(relay.port, ['HEAD /h HTTP/1.1\r\nHost: a\r\n\r\nGET /204 HTTP/1.1\r\nHost: a\r\n\r\nGET /304 HTTP/1.1\r\nHost: a\r\n\r\nGET /last HTTP/1.1\r\nHost: a\r\n\r\n'], { until: (t) => t.endsWith('last') });
    assert.deepEqual(statuses(r.text), [200, 204, 304, 200], r.text);
    assert.ok(r.text.endsWith('\r\n\r\nlast'));
  });

  test('an early answer (413 before the body is sent) ends the connection; the rest of the body is not read as a request', async () => {
    const before = upstreamBytes().length;
    up.script = (sofar, s) => {
      if (sofar.includes('\r\n\r\n') && !(s as Socket & { done?: boolean }).done) {
        (s as Socket & { done?: boolean }).done = true;
        s.end('HTTP/1.1 413 Payload Too Large\r\ncontent-length: 3\r\nconnection: close\r\n\r\nbig');
      }
    };
    const r = await talk(relay.port, ['POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\nabc', 'GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n'], { gapMs: 200 });
    assert.deepEqual(statuses(r.text), [413], r.text);
    assert.match(r.text, /\r\nconnection: close\r\n/i);
    assert.equal(r.closed, true);
    assert.doesNotMatch(upstreamBytes().slice(before), /smuggled/);
  });

  test('an upstream that closes in the middle of its body: the client connection is closed, not left with a short answer it could take as whole', async () => {
    up.script = (sofar, s) => {
      if (sofar.endsWith('\r\n\r\n')) s.end('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten b');
    };
    const r = await talk(relay.port, ['GET /cut HTTP/1.1\r\nHost: a\r\n\r\n']);
    assert.equal(r.closed, true);
    assert.ok(r.text.endsWith('only ten b'));
    const chunked = await (async () => {
      up.script = (sofar, s) => {
        if (sofar.endsWith('\r\n\r\n')) s.end('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n');
      };
      return talk(relay.port, ['GET /cut2 HTTP/1.1\r\nHost: a\r\n\r\n']);
    })();
    assert.equal(chunked.closed, true);
    assert.ok(!chunked.text.endsWith('0\r\n\r\n'), 'no last chunk: the client sees the answer is cut');
  });

  test('an upstream that closes before answering: 502', async () => {
    up.script = (sofar, s) => {
      if (sofar.endsWith('\r\n\r\n')) s.destroy();
    };
    const r = await talk(relay.port, ['GET /gone HTTP/1.1\r\nHost: a\r\n\r\n'], { until: (t) => statuses(t).length > 0 && t.includes('接続') });
    assert.deepEqual(statuses(r.text), [502]);
  });

  test('an upstream answer in a transfer coding the gateway does not relay (gzip, chunked): 502, not the coding dropped and the bytes passed on as if plain', async () => {
    up.script = (sofar, s) => {
      if (sofar.endsWith('\r\n\r\n')) s.write('HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
    };
    const r = await talk(relay.port, ['GET /gz HTTP/1.1\r\nHost: a\r\n\r\n'], { until: (t) => statuses(t).length > 0 && t.includes('接続') });
    assert.deepEqual(statuses(r.text), [502]);
    assert.ok(relay.upstreamErrors.some((e) => /CODING/.test(e)), relay.upstreamErrors.join('; '));
  });

  test('an upstream that sends informational (1xx) answers without end: 502 after 8, the client connection is not held by them', async () => {
    up.script = (sofar, s) => {
      if (!sofar.endsWith('\r\n\r\n')) return;
      const tick = setInterval(() => (s.destroyed ? clearInterval(tick) : s.write('HTTP/1.1 102 Processing\r\n\r\n')), 20);
    };
    const r = await talk(relay.port, ['GET /slow HTTP/1.1\r\nHost: a\r\n\r\n'], { until: (t) => statuses(t).length > 0 && t.includes('接続'), waitMs: 3000 });
    assert.deepEqual(statuses(r.text), [502]);
    assert.ok(relay.upstreamErrors.some((e) => /INFORMATIONAL/.test(e)), relay.upstreamErrors.join('; '));
  });

  test('a Content-Length with leading zeros goes on in canonical decimal, both ways', async () => {
    up.script = (sofar, s) => {
      if (sofar.endsWith('\r\n\r\nabc')) s.write('HTTP/1.1 200 OK\r\ncontent-length: 002\r\n\r\nok');
    };
    const r = await talk(relay.port, ['POST /len HTTP/1.1\r\nHost: a\r\nContent-Length: 003\r\n\r\nabc'], { until: (t) => t.endsWith('ok') });
    assert.deepEqual(statuses(r.text), [200]);
    assert.match(r.text, /\r\ncontent-length: 2\r\n/);
    assert.match(upstreamBytes(), /\r\ncontent-length: 3\r\n/);
    assert.doesNotMatch(upstreamBytes() + r.text, /content-length: 00/i);
  });

  test('an HTTP/1.0 upstream that answers until close: a complete chunked answer, and the client connection stays for the next request', async () => {
    up.script = (sofar, s) => {
      if (sofar.endsWith('\r\n\r\n')) s.end('HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nold server body');
    };
    const r = await talk(relay.port, ['GET /old HTTP/1.1\r\nHost: a\r\n\r\n'], { until: (t) => t.endsWith('0\r\n\r\n') });
    assert.equal(r.closed, false);
    assert.match(r.text, /transfer-encoding: chunked/i);
    assert.match(r.text, /\r\nf\r\nold server body\r\n0\r\n\r\n$/);
  });

  test('chunked answers lose their trailers; hop-by-hop fields and those named by Connection are dropped', async () => {
    up.script = (sofar, s) => {
      if (sofar.endsWith('\r\n\r\n')) s.write('HTTP/1.1 200 OK\r\nconnection: x-private\r\nx-private: secret\r\nkeep-alive: timeout=1\r\nupgrade: h2c\r\nx-kept: yes\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nx-trailer: t\r\n\r\n');
    };
    const r = await talk(relay.port, ['GET /t HTTP/1.1\r\nHost: a\r\n\r\n'], { until: (t) => t.endsWith('0\r\n\r\n') });
    assert.match(r.text, /x-kept: yes/);
    assert.doesNotMatch(r.text, /x-private|secret|upgrade|x-trailer|timeout=1/i);
    assert.match(r.text, /\r\n2\r\nhi\r\n0\r\n\r\n$/);
  });

  test('an upstream Connection: close: the client keeps its connection, the next request goes on a new upstream connection', async () => {
    const before = up.received.length;
    up.script = (sofar, s) => {
      if (sofar.endsWith('\r\n\r\n')) s.end('HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok');
    };
    const r = await talk(relay.port, ['GET /1 HTTP/1.1\r\nHost: a\r\n\r\n', 'GET /2 HTTP/1.1\r\nHost: a\r\n\r\n'], { until: (t) => statuses(t).length === 2, gapMs: 200 });
    assert.deepEqual(statuses(r.text), [200, 200]);
    assert.equal(r.closed, false);
    assert.doesNotMatch(r.text, /connection: close/i);
    assert.equal(up.received.length - before, 2, 'two upstream connections');
  });

  test('a response the upstream sends unasked (after a complete one) does not reach the client, and the upstream connection is not reused', async () => {
    const before = up.received.length;
    up.script = (sofar, s) => {
      if (sofar.endsWith('\r\n\r\n') && !sofar.includes('/b ')) s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nextra');
      else if (sofar.endsWith('\r\n\r\n')) s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
    };
    const r = await talk(relay.port, ['GET /a HTTP/1.1\r\nHost: a\r\n\r\n', 'GET /b HTTP/1.1\r\nHost: a\r\n\r\n'], { until: (t) => statuses(t).length === 2, gapMs: 200 });
    assert.deepEqual(statuses(r.text), [200, 200]);
    assert.doesNotMatch(r.text, /extra/);
    assert.equal(up.received.length - before, 2);
  });
});

describe('the client side', () => {
  test('a head not complete within the headers timeout: 408 and closed', async () => {
    const r = await talk(relay.port, ['GET / HTTP/1.1\r\nHost: a\r\n'], { waitMs: 8000 });
    assert.deepEqual(statuses(r.text), [408]);
    assert.equal(r.closed, true);
  });

  test('a client that half-closes after its request still gets the answer', async () => {
    const r = await talk(relay.port, ['GET /half HTTP/1.1\r\nHost: a\r\n\r\n'], { endAfter: true });
    assert.deepEqual(statuses(r.text), [200]);
    assert.equal(r.closed, true);
  });

  test('a route the client may not use: 403 page, the connection stays, and the denied request\'s body is read and dropped', async () => {
    const before = upstreamBytes().length;
    const inner = 'GET /smuggled HTTP/1.1\r\nA: b\r\n\r\n';
    const r = await talk(relay.port, [`POST /closed/x HTTP/1.1\r\nHost: a\r\nContent-Length: ${inner.length}\r\n\r\n${inner}GET /ok HTTP/1.1\r\nHost: a\r\n\r\n`], { until: (t) => statuses(t).length === 2 && t.endsWith('ok') });
    assert.deepEqual(statuses(r.text), [403, 200]);
    assert.match(r.text, /x-sekisho-refusal: ACCESS_DENIED/);
    const got = upstreamBytes().slice(before);
    assert.doesNotMatch(got, /smuggled/);
    assert.match(got, /^GET \/ok /m);
    assert.deepEqual(relay.requests.slice(-2).map((x) => [x.status, x.path]), [[403, '/closed/x'], [200, '/ok']]);
  });
});

describe('a kept-alive upstream connection the upstream closed', () => {
  test('a GET goes again once on a new connection; a bodiless DELETE is answered 502, never sent twice', async () => {
    // The first exchange leaves an upstream connection in the pool; the upstream then closes it when the next request arrives.
    let deletes = 0;
    up.script = (sofar, s) => {
      if (!sofar.endsWith('\r\n\r\n')) return;
      if (/^DELETE /m.test(sofar)) deletes++;
      // The first request on a connection is answered; the second finds it closed.
      if (sofar.split('\r\n\r\n').length - 1 === 1) s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      else s.destroy();
    };
    const get = await talk(relay.port, ['GET /warm HTTP/1.1\r\nHost: a\r\n\r\n', 'GET /again HTTP/1.1\r\nHost: a\r\n\r\n'], { until: (t) => statuses(t).length === 2, gapMs: 200 });
    assert.deepEqual(statuses(get.text), [200, 200], 'the GET went again on a new connection');
    await up.dropConnections();
    const del = await talk(relay.port, ['GET /warm HTTP/1.1\r\nHost: a\r\n\r\n', 'DELETE /thing HTTP/1.1\r\nHost: a\r\n\r\n'], { until: (t) => statuses(t).length === 2, gapMs: 200 });
    assert.deepEqual(statuses(del.text), [200, 502]);
    assert.equal(deletes, 1, 'the DELETE reached the upstream once');
  });
});

describe('large bodies, slow readers', () => {
  test('responses from several upstream connections at once, each read slowly by its client, arrive byte for byte (length-framed and chunked)', async () => {
    // Every upstream connection's reads land in one shared buffer, so whatever the relay passes on must not depend on
    // it after the read. The upstreams send in small pieces (small reads, each under the socket's high-water mark,
    // so the relay goes on reading while a client is congested); four responses interleave. (With the copy in flush()
    // removed this test still passed on Node 24, why was not found: it checks the bytes, not that copy.)
    // More than the kernel holds for a client that does not read (its send buffer grows to 4 MiB here).
    const SIZE = 12 * 1024 * 1024;
    const PIECE = 4096;
    const bodies = new Map<string, Buffer>();
    up.script = (sofar, s) => {
      const m = /^GET \/big\/(\w+) /m.exec(sofar);
      if (!m || !sofar.endsWith('\r\n\r\n')) return;
      const body = randomBytes(SIZE);
      bodies.set(m[1]!, body);
      const chunked = m[1]!.startsWith('chunked');
      s.setNoDelay(true);
      s.write(chunked ? 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n' : `HTTP/1.1 200 OK\r\ncontent-length: ${SIZE}\r\n\r\n`);
      let at = 0;
      const next = () => {
        if (s.destroyed) return;
        if (at >= SIZE) {
          if (chunked) s.write('0\r\n\r\n');
          return;
        }
        const part = body.subarray(at, (at += PIECE));
        if (chunked) s.write(Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n')]));
        else s.write(part);
        setImmediate(next);
      };
      next();
    };
    /** Reads the answer to GET /big/<name> a little at a time: the relay's writes to this client back up. */
    const slowGet = (name: string) =>
      new Promise<Buffer>((resolve, reject) => {
        const c = connect({ host: '127.0.0.1', port: relay.port });
        const chunks: Buffer[] = [];
        c.on('error', reject);
        c.on('data', (d: Buffer) => {
          chunks.push(d);
          c.pause();
          setTimeout(() => c.resume(), 2);
        });
        c.on('end', () => resolve(Buffer.concat(chunks)));
        // Nothing read at first: the kernel's buffers fill and the relay's writes to this client wait in its socket.
        c.pause();
        setTimeout(() => c.resume(), 500);
        c.write(`GET /big/${name} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
      });
    /** The body of one response, de-chunked when it is chunked. */
    const bodyOf = (answer: Buffer): Buffer => {
      const end = answer.indexOf('\r\n\r\n');
      const head = answer.subarray(0, end).toString('latin1');
      let rest = answer.subarray(end + 4);
      if (!/transfer-encoding: chunked/i.test(head)) return rest;
      const parts: Buffer[] = [];
      for (;;) {
        const eol = rest.indexOf('\r\n');
        const n = parseInt(rest.subarray(0, eol).toString('latin1'), 16);
        if (n === 0) return Buffer.concat(parts);
        parts.push(rest.subarray(eol + 2, eol + 2 + n));
        rest = rest.subarray(eol + 2 + n + 2);
      }
    };
    const names = ['a', 'b', 'chunked1', 'chunked2'];
    const answers = await Promise.all(names.map(slowGet));
    for (const [i, name] of names.entries()) {
      const got = bodyOf(answers[i]!);
      assert.equal(got.length, SIZE, `${name}: ${got.length} body bytes`);
      assert.ok(got.equals(bodies.get(name)!), `${name}: the body arrived altered`);
    }
  });
});

describe('closed connections', () => {
  test('regression: the parsers of closed client and upstream connections are deleted, and nothing of those connections stays in the heap', async () => {
    // Every way a connection ends here: a kept-alive exchange the client ends, an upstream that answers with
    // Connection: close, an upstream that drops its connection, a request refused 400, a head cut short. Before the
    // fix a parser was only freed, never deleted: its native side kept it, and through it the connection, for good.
    const live = () => queryObjects(MessageParser, { format: 'count' });
    await up.dropConnections();
    const before = live();
    up.script = (sofar, s) => {
      if (!sofar.endsWith('\r\n\r\n')) return;
      if (/^GET \/close /m.test(sofar)) s.write('HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok');
      else if (/^GET \/drop /m.test(sofar)) s.destroy();
      else s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
    };
    const N = 10;
    for (let i = 0; i < N; i++) {
      await Promise.all([
        talk(relay.port, ['GET /kept HTTP/1.1\r\nHost: a\r\n\r\n'], { until: (t) => t.endsWith('ok'), endAfter: true }),
        talk(relay.port, ['GET /close HTTP/1.1\r\nHost: a\r\n\r\n'], { until: (t) => t.endsWith('ok') }),
        talk(relay.port, ['GET /drop HTTP/1.1\r\nHost: a\r\n\r\n'], { until: (t) => statuses(t).length === 1 }),
        talk(relay.port, ['GET / HTTP/1.1\nHost: a\n\n'], { until: (t) => statuses(t).length === 1 }),
        talk(relay.port, ['GET /cut HTTP/1.1\r\nHo'], { waitMs: 50 }),
      ]);
    }
    // The upstream connections left in the pool go too: their parsers with them.
    await up.dropConnections();
    let left = live();
    for (let i = 0; i < 40 && left > before; i++) {
      await new Promise((r) => setTimeout(r, 50));
      left = live();
    }
    assert.ok(left <= before, `${left - before} parsers of ${N * 5} closed client connections and their upstream connections are still in the heap`);
  });
});

describe('backpressure: a client that does not read holds back only itself', () => {
  test('a client that pipelines requests and never reads: what the gateway buffers for it stays bounded (refusal pages wait for it to read)', async () => {
    const c = connect({ port: relay.port, host: '127.0.0.1' });
    c.pause();
    c.on('error', () => undefined);
    await new Promise((r) => c.once('connect', r));
    // 403 pages are ~40× the bytes of the requests that earn them.
    const req = Buffer.from('GET /closed/x HTTP/1.1\r\nHost: a\r\n\r\n'.repeat(200));
    const started = Date.now();
    let sent = 0;
    for (; sent < 4 * 1024 * 1024 && Date.now() - started < 3000; sent += req.length) {
      if (!c.write(req)) await Promise.race([new Promise((r) => c.once('drain', r)), new Promise((r) => setTimeout(r, 1000))]);
    }
    await new Promise((r) => setTimeout(r, 500));
    const buffered = Math.max(0, ...[...relay.clients].map((s) => s.writableLength));
    c.destroy();
    assert.ok(buffered < 256 * 1024, `the gateway holds ${(buffered / 1024).toFixed(0)} KiB of answers for a client that sent ${(sent / 1048576).toFixed(1)} MiB and read none`);
  });

  test('more than 32 requests pipelined on one connection: the 32 are answered in order, then 429 and the end of the connection; nothing more reaches the upstream', async () => {
    const before = upstreamBytes().length;
    const r = await talk(relay.port, ['GET /a HTTP/1.1\r\nHost: a\r\n\r\n'.repeat(100)], { waitMs: 5000 });
    const got = statuses(r.text);
    assert.deepEqual(got, [...Array<number>(32).fill(200), 429], `${got.length} answers`);
    assert.equal(r.closed, true);
    assert.equal((upstreamBytes().slice(before).match(/^GET \/a /gm) ?? []).length, 32, 'the upstream got the 32 only');
  });

  test('an upstream connection paused for a slow reader goes back to the pool reading: the next client gets its answer', async () => {
    const body = 'x'.repeat(32 * 1024);
    up.script = (sofar, s) => {
      const heads = sofar.split('\r\n\r\n').length - 1;
      const done = (s as Socket & { n?: number }).n ?? 0;
      for (let i = done; i < heads; i++) s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
      (s as Socket & { n?: number }).n = heads;
    };
    const a = connect({ port: relay.port, host: '127.0.0.1' });
    a.pause();
    a.on('error', () => undefined);
    await new Promise((r) => a.once('connect', r));
    // Until the gateway's socket towards A reports backpressure: the upstream connection was paused for it.
    const towardsA = () => [...relay.clients].find((s) => s.remotePort === a.localPort);
    for (let n = 0; n < 2000 && !towardsA()?.writableNeedDrain; n++) {
      a.write('GET /a HTTP/1.1\r\nHost: a\r\n\r\n');
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(towardsA()?.writableNeedDrain, 'the client that does not read caused backpressure');
    await new Promise((r) => setTimeout(r, 200));
    const r = await talk(relay.port, ['GET /b HTTP/1.1\r\nHost: b\r\n\r\n'], { until: (t) => t.length >= body.length, waitMs: 3000 });
    a.destroy();
    assert.deepEqual(statuses(r.text), [200], `client B got ${r.text.length} bytes in 3 s`);
  });
});

describe('path parameters (;…) are judged as a Java upstream maps them', () => {
  for (const target of ['/closed;x/secret', '/closed;jsessionid=1/secret', '/;/closed/secret', '/CLOSED/../closed;a=b/x', '/%3B/closed/secret', '/closed;x']) {
    test(`${target}: the /closed/ rule decides (403), nothing reaches the upstream`, async () => {
      const before = upstreamBytes().length;
      const r = await talk(relay.port, [`GET ${target} HTTP/1.1\r\nHost: a\r\n\r\n`], { waitMs: 1500, until: (t) => /\r\n\r\n/.test(t) });
      const status = statuses(r.text)[0];
      // %3B is an encoded ';' (kept encoded: data, not a parameter): '/%3B/closed/secret' is an ordinary path under '/'.
      if (target.startsWith('/%3B')) assert.equal(status, 200);
      else {
        assert.equal(status, 403, `answered ${statuses(r.text)}`);
        assert.equal(upstreamBytes().length, before);
      }
    });
  }
  test('a path with parameters under a route the client may use reaches the upstream with its parameters', async () => {
    const r = await talk(relay.port, ['GET /open;jsessionid=ABC/page;v=1?q=1 HTTP/1.1\r\nHost: a\r\n\r\n'], { waitMs: 1500, until: (t) => t.endsWith('ok') });
    assert.deepEqual(statuses(r.text), [200]);
    assert.match(upstreamBytes(), /^GET \/open;jsessionid=ABC\/page;v=1\?q=1 HTTP\/1\.1\r\n/m);
  });
});

describe('upgrade requests are relayed as plain requests, under the same timeouts', () => {
  test('an Upgrade request whose Content-Length body comes in a later packet: the body reaches the upstream and the answer comes back', async () => {
    up.script = (sofar, s) => {
      if (sofar.endsWith('\r\n\r\n0123456789')) s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
    };
    const head = 'POST /u HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c\r\nContent-Length: 10\r\n\r\n';
    const r = await talk(relay.port, [head, '0123456789'], { gapMs: 100, waitMs: 1500, until: (t) => t.endsWith('ok') });
    assert.deepEqual(statuses(r.text), [200], `upstream read: ${JSON.stringify(upstreamBytes().slice(-40))}`);
    assert.match(r.text, /connection: close/i, 'not kept alive: nothing after the upgrade request is read');
  });

  test('an Upgrade request whose body trickles is cut at the request timeout', async () => {
    const strict = await relayHarness(up.port, { headersTimeoutMs: 1000, requestTimeoutMs: 2000, idleTimeoutMs: 4000 });
    try {
      up.script = () => undefined;
      const head = 'POST /u HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c\r\nContent-Length: 100\r\n\r\n';
      const r = await talk(strict.port, [head, ...'0123456789'], { gapMs: 700, waitMs: 7000 });
      assert.equal(r.closed, true, 'still open after 7 s (request timeout 2 s)');
    } finally {
      await strict.close();
    }
  });
});
