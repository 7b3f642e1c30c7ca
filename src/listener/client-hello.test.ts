import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import { buildClientHello } from '../scan/wire/client-hello.js';
import { MAX_HELLO_BYTES, MAX_LIST, firstRecordLength, isGrease, offeredVersions, parseClientHello, peekFirstRecord } from './index.js';

const AES128_GCM = 0x1301;
const ECDHE_RSA_AES128_GCM = 0xc02f;
const RSA_AES128_CBC = 0x002f;

/** An SSL 2.0-format CLIENT-HELLO (as old OpenSSL sent for SSLv23): version, three lengths, 3-byte specs, challenge. */
function sslv2Hello(version: number, specs: number[]): Buffer {
  const body = Buffer.alloc(9 + specs.length * 3 + 16);
  body[0] = 1;
  body.writeUInt16BE(version, 1);
  body.writeUInt16BE(specs.length * 3, 3);
  body.writeUInt16BE(0, 5);
  body.writeUInt16BE(16, 7);
  specs.forEach((s, i) => body.writeUIntBE(s, 9 + i * 3, 3));
  const head = Buffer.from([0x80 | (body.length >> 8), body.length & 0xff]);
  return Buffer.concat([head, body]);
}

describe('ClientHello summary: what a client offered, read before TLS takes the socket', () => {
  test('a TLS 1.3 hello: supported_versions, suites and groups in order', () => {
    const h = parseClientHello(buildClientHello({ version: 'TLSv1.3', cipherSuites: [AES128_GCM, ECDHE_RSA_AES128_GCM], groups: [0x1d, 0x17] }))!;
    assert.equal(h.format, 'tls');
    assert.deepEqual(h.supportedVersions, [0x0304]);
    assert.deepEqual(h.suites, [AES128_GCM, ECDHE_RSA_AES128_GCM]);
    assert.deepEqual(h.groups, [0x1d, 0x17]);
    assert.equal(h.truncated, false);
  });

  test('a TLS 1.0 hello offers its legacy version; an SSL 3.0 hello without extensions parses whole', () => {
    const t10 = parseClientHello(buildClientHello({ version: 'TLSv1.0', cipherSuites: [RSA_AES128_CBC] }))!;
    assert.deepEqual(offeredVersions(t10), [0x0301]);
    assert.equal(t10.truncated, false);
    const s3 = parseClientHello(buildClientHello({ version: 'SSLv3', cipherSuites: [RSA_AES128_CBC] }))!;
    assert.deepEqual(offeredVersions(s3), [0x0300]);
    assert.deepEqual(s3.suites, [RSA_AES128_CBC, 0x00ff]);
    assert.equal(s3.truncated, false);
  });

  test('GREASE values (RFC 8701) are left out of every list', () => {
    assert.ok(isGrease(0x0a0a) && isGrease(0xfafa) && !isGrease(0x0a1a) && !isGrease(0x1301));
    const h = parseClientHello(buildClientHello({ version: 'TLSv1.2', cipherSuites: [0x2a2a, ECDHE_RSA_AES128_GCM], groups: [0x3a3a, 0x17] }))!;
    assert.deepEqual(h.suites, [ECDHE_RSA_AES128_GCM]);
    assert.deepEqual(h.groups, [0x17]);
  });

  test('an SSL 2.0-style hello is recognized, with the TLS suites it lists', () => {
    const h = parseClientHello(sslv2Hello(0x0301, [0x010080, 0x00002f, 0x000035]))!;
    assert.equal(h.format, 'sslv2');
    assert.equal(h.legacyVersion, 0x0301);
    assert.deepEqual(h.suites, [0x002f, 0x0035]);
    assert.equal(firstRecordLength(sslv2Hello(0x0002, [0x010080])), 2 + 9 + 3 + 16);
  });

  test('defect guarded: a hello cut at any byte never throws and says it is truncated (or is not a hello at all)', () => {
    for (const full of [buildClientHello({ version: 'TLSv1.3', cipherSuites: [AES128_GCM, 0x1302, 0x1303] }), buildClientHello({ version: 'TLSv1.0', cipherSuites: [RSA_AES128_CBC, 0x0035] }), sslv2Hello(0x0301, [0x00002f, 0x000035])]) {
      const whole = parseClientHello(full)!;
      for (let n = 0; n < full.length; n++) {
        const h = parseClientHello(full.subarray(0, n));
        if (!h) continue;
        assert.equal(h.truncated, true, `cut at ${n} of ${full.length}`);
        assert.ok(h.suites.length <= whole.suites.length);
      }
    }
  });

  test('defect guarded: oversized lists and lengths stay bounded (MAX_LIST codes kept, the rest counted; one record read)', () => {
    const suites = Array.from({ length: 500 }, (_, i) => 0x0100 + i);
    const h = parseClientHello(buildClientHello({ version: 'TLSv1.2', cipherSuites: suites }))!;
    assert.equal(h.suites.length, MAX_LIST);
    assert.ok(h.dropped >= 500 - MAX_LIST);
    // A record header claiming 65535 bytes: read no further than the buffer and MAX_HELLO_BYTES.
    const big = Buffer.alloc(MAX_HELLO_BYTES + 5000, 0x41);
    big.set([22, 3, 1, 0xff, 0xff, 1, 0xff, 0xff, 0xff], 0);
    assert.equal(firstRecordLength(big), MAX_HELLO_BYTES);
    assert.equal(parseClientHello(big)?.truncated, true);
  });

  test('fuzz: garbage and mutated hellos never throw and never yield more than MAX_LIST codes per list', () => {
    const base = buildClientHello({ version: 'TLSv1.3', cipherSuites: [AES128_GCM, ECDHE_RSA_AES128_GCM] });
    for (let i = 0; i < 20_000; i++) {
      let b: Buffer;
      if (i % 2) {
        b = randomBytes(1 + (i % 700));
        if (i % 4 === 1) b[0] = 22;
        if (i % 8 === 1 && b.length > 2) b[1] = 3;
      } else {
        b = Buffer.from(base);
        for (let k = 0; k < 1 + (i % 6); k++) b[Math.floor(Math.random() * b.length)] = Math.floor(Math.random() * 256);
        if (i % 3 === 0) b = b.subarray(0, Math.floor(Math.random() * b.length));
      }
      const h = parseClientHello(b);
      if (h) assert.ok(h.suites.length <= MAX_LIST && h.groups.length <= MAX_LIST && h.supportedVersions.length <= MAX_LIST);
    }
  });

  test('plain HTTP or garbage is no hello', () => {
    assert.equal(parseClientHello(Buffer.from('GET / HTTP/1.1\r\n\r\n')), undefined);
    assert.equal(parseClientHello(Buffer.alloc(0)), undefined);
    assert.equal(parseClientHello(Buffer.from([22, 3, 1, 0, 4, 2, 0, 0, 0])), undefined, 'a ServerHello is no ClientHello');
  });
});

describe('peekFirstRecord: holds a socket until its first record is in, then gives the bytes back untouched', () => {
  async function peekOver(write: (c: Socket) => Promise<void>): Promise<{ peeked: Buffer | undefined; after: Buffer }> {
    let resolve!: (v: { peeked: Buffer | undefined; after: Buffer }) => void;
    const got = { promise: new Promise<{ peeked: Buffer | undefined; after: Buffer }>((r) => (resolve = r)), resolve: (v: { peeked: Buffer | undefined; after: Buffer }) => resolve(v) };
    const server = createServer((raw) => {
      peekFirstRecord(raw, (peeked) => {
        const parts: Buffer[] = [];
        raw.on('data', (d: Buffer) => parts.push(d));
        raw.on('end', () => got.resolve({ peeked, after: Buffer.concat(parts) }));
        raw.resume();
        if (!peeked) got.resolve({ peeked, after: Buffer.alloc(0) });
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const c = connect((server.address() as { port: number }).port, '127.0.0.1');
    await new Promise((r) => c.once('connect', r));
    await write(c);
    const out = await got.promise;
    c.destroy();
    server.close();
    return out;
  }

  test('a hello sent in three pieces is held until whole; the socket then reads every byte (hello and what followed) in order', async () => {
    const hello = buildClientHello({ version: 'TLSv1.3', cipherSuites: [AES128_GCM] });
    const tail = Buffer.from('after the hello');
    const { peeked, after } = await peekOver(async (c) => {
      for (const part of [hello.subarray(0, 3), hello.subarray(3, 100), Buffer.concat([hello.subarray(100), tail])]) {
        c.write(part);
        await new Promise((r) => setTimeout(r, 30));
      }
      c.end();
    });
    assert.ok(peeked && peeked.length >= hello.length);
    assert.deepEqual(parseClientHello(peeked)?.suites, [AES128_GCM]);
    assert.deepEqual(after, Buffer.concat([hello, tail]));
  });

  test('a client that closes before its first record is complete: undefined', async () => {
    const { peeked } = await peekOver(async (c) => {
      c.end(Buffer.from([22, 3, 1]));
    });
    assert.equal(peeked, undefined);
  });

  test('regression: a client that dribbles a full-size record a byte at a time costs a linear number of copied bytes, not one copy of everything so far per byte', () => {
    const record = Buffer.alloc(MAX_HELLO_BYTES);
    record[0] = 22;
    record.writeUInt16BE(0x0301, 1);
    record.writeUInt16BE(MAX_HELLO_BYTES - 5, 3);
    record[5] = 1;
    const raw = Object.assign(new EventEmitter(), { pause: () => raw, unshift: (b: Buffer) => (unshifted = b) });
    let unshifted: Buffer | undefined;
    let peeked: Buffer | undefined;
    let copied = 0;
    const concat = Buffer.concat;
    Buffer.concat = ((list: readonly Uint8Array[], length?: number) => {
      const out = concat(list, length);
      copied += out.length;
      return out;
    }) as typeof Buffer.concat;
    try {
      peekFirstRecord(raw as unknown as Socket, (b) => (peeked = b));
      for (let i = 0; i < record.length; i++) raw.emit('data', record.subarray(i, i + 1));
    } finally {
      Buffer.concat = concat;
    }
    assert.ok(peeked && peeked.equals(record), 'the whole record is handed on');
    assert.equal(unshifted, peeked);
    assert.ok(copied < 4 * MAX_HELLO_BYTES, `${copied} bytes copied for a ${MAX_HELLO_BYTES}-byte record`);
  });
});
