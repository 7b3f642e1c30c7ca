/**
 * Fuzzing the HTTP relay (http-forwarder.ts), which faces the network:
 * mutated valid request streams (pipelined, chunked, Content-Length, with
 * spoofed identity headers) go to the relay, split at random points, and
 * mutated valid answers come from the upstream. A seeded generator, so a
 * failure repeats. Whatever comes in, the process never throws, every
 * connection ends or answers, and what reaches the upstream is always a
 * sequence of well-formed requests (read back with the same strict parser),
 * each with the gateway's one Host, one framing (never Content-Length with
 * Transfer-Encoding), and no identity header but the gateway's.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageParser, type MessageHead } from './http-head-parser.js';
import { isSpoofable } from './identity-headers.js';
import { relayHarness, scriptedUpstream, talk, type RelayHarness, type ScriptedUpstream } from '../testing/relay-harness.js';
import { seededRandom as rng } from '../testing/seeded-random.js';


const TOKENS = ['\r\n', '\n', '\r', ' ', '\t', ':', ',', '\0', 'chunked', 'Transfer-Encoding: chunked\r\n', 'Content-Length: 5\r\n', 'Content-Length: 0\r\n', 'Host: x\r\n', 'X-Sekisho-Facility-Number: 1\r\n', 'Connection: close\r\n', '0\r\n\r\n', 'GET / HTTP/1.1\r\n', '\r\n\r\n', 'HTTP/1.0', 'Expect: 100-continue\r\n', 'ffffffffffffffff', '\x80', ';'];

function mutate(input: string, r: (n: number) => number): string {
  let out = input;
  const ops = 1 + r(4);
  for (let i = 0; i < ops; i++) {
    const at = r(out.length + 1);
    switch (r(6)) {
      case 0:
        out = out.slice(0, at) + String.fromCharCode(r(256)) + out.slice(at + 1);
        break;
      case 1:
        out = out.slice(0, at);
        break;
      case 2:
        out = out.slice(0, at) + TOKENS[r(TOKENS.length)]! + out.slice(at);
        break;
      case 3:
        out = out.slice(0, at) + out.slice(at + 1 + r(8));
        break;
      case 4: {
        const from = r(out.length + 1);
        out = out.slice(0, at) + out.slice(from, from + r(40)) + out.slice(at);
        break;
      }
      default:
        out = out.slice(0, at) + TOKENS[r(TOKENS.length)]! + out.slice(at + r(10));
    }
  }
  return out;
}

const REQUESTS = [
  'GET /a?x=1 HTTP/1.1\r\nHost: h\r\nX-Sekisho-Cert-Serial: ff\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n',
  'POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: h\r\n\r\n',
  'PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;x=y\r\nabc\r\n0\r\nT: v\r\n\r\nGET /d HTTP/1.1\r\nConnection: close\r\n\r\n',
  'HEAD /e HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /f HTTP/1.1\r\nX_Forwarded_For: 1.2.3.4\r\nConnection: x-a, close\r\nX-A: 1\r\n\r\n',
  'POST /g HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc',
];
const ANSWERS = [
  'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok',
  'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nx: y\r\n\r\n',
  'HTTP/1.0 200 OK\r\n\r\nuntil close',
  'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n',
  'HTTP/1.1 304 Not Modified\r\nconnection: close\r\n\r\n',
];

/** Reads what the upstream received as requests; returns the heads, or throws on a stream that is not well-formed requests. */
function requestsIn(bytes: string): MessageHead[] {
  const heads: MessageHead[] = [];
  const p = new MessageParser('request', { begin: () => undefined, head: (h) => (heads.push(h), false), body: () => undefined, done: () => undefined });
  try {
    p.execute(Buffer.from(bytes, 'latin1'));
  } finally {
    p.close();
  }
  return heads;
}

let up: ScriptedUpstream;
let relay: RelayHarness;
before(async () => {
  up = await scriptedUpstream();
  relay = await relayHarness(up.port, { headersTimeoutMs: 1000, requestTimeoutMs: 2000 });
});
after(async () => {
  await relay.close();
  await up.close();
});

test('fuzz: mutated requests and answers never crash the relay, and the upstream only ever reads well-formed requests with the gateway\'s Host and identity', async () => {
  const r = rng(0x5e15e0);
  const N = 200;
  for (let i = 0; i < N; i++) {
    const answer = r(3) === 0 ? mutate(ANSWERS[r(ANSWERS.length)]!, r) : ANSWERS[r(ANSWERS.length)]!;
    up.script = (sofar, s) => {
      // One answer per complete head seen (roughly); a mutated one may be anything.
      const heads = sofar.split('\r\n\r\n').length - 1;
      const done = (s as typeof s & { answered?: number }).answered ?? 0;
      for (let k = done; k < heads; k++) s.write(answer);
      (s as typeof s & { answered?: number }).answered = heads;
    };
    const input = r(4) === 0 ? REQUESTS[r(REQUESTS.length)]! : mutate(REQUESTS[r(REQUESTS.length)]!, r);
    const cut = r(input.length + 1);
    const before = up.received.length;
    await talk(relay.port, [input.slice(0, cut), input.slice(cut)], { waitMs: 150, gapMs: r(2) ? 5 : 0 });
    const sent = up.received.slice(before);
    await up.dropConnections();
    for (const bytes of sent) {
      let heads: MessageHead[];
      try {
        heads = requestsIn(bytes);
      } catch (e) {
        // (A stream cut inside a body is no error to llhttp: it waits for more.)
        assert.fail(`case ${i}: the upstream read a malformed request stream (${String(e)}): ${JSON.stringify(bytes)} from ${JSON.stringify(input)}`);
      }
      for (const h of heads) {
        const names = h.raw.filter((_, k) => k % 2 === 0).map((n) => n.toLowerCase());
        assert.equal(names.filter((n) => n === 'host').length, 1, `case ${i}: one Host`);
        assert.equal(h.raw[names.indexOf('host') * 2 + 1], `127.0.0.1:${up.port}`);
        assert.ok(!(names.includes('content-length') && names.includes('transfer-encoding')), `case ${i}: one framing`);
        assert.ok(names.filter((n) => n === 'content-length').length <= 1);
        assert.equal(names.filter((n) => n === 'x-sekisho-facility-number').length, 1, `case ${i}: the gateway's identity, once`);
        assert.equal(h.raw[names.indexOf('x-sekisho-cert-serial') * 2 + 1], '0a0b0c', `case ${i}: the gateway's serial`);
        assert.equal(names.filter((n) => n === 'x-forwarded-for').length, 1);
        for (const n of names) if (isSpoofable(n)) assert.ok(/^(x-sekisho-(facility-number|facility-name|profile|cert-serial|cert-sha256|subject)|client-cert|x-forwarded-(for|proto))$/.test(n), `case ${i}: ${n} reached the upstream`);
      }
    }
  }
  // Still serving after all that.
  up.script = (sofar, s) => {
    if (sofar.endsWith('\r\n\r\n')) s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
  };
  const last = await talk(relay.port, ['GET /still HTTP/1.1\r\nHost: h\r\n\r\n'], { until: (t) => t.endsWith('ok') });
  assert.match(last.text, /^HTTP\/1\.1 200 OK\r\n/);
});
