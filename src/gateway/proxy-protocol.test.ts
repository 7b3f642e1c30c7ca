import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseProxyV2, proxyV2Header, PP2_SUBTYPE_SSL_CN, PP2_TYPE_SEKISHO_IDENTITY, PP2_TYPE_SSL } from './proxy-protocol.js';
import type { ClientIdentity } from './client-identity.js';

const identity: ClientIdentity = {
  profile: 'facility',
  facilityNumber: '0110113719',
  facilityName: 'はこだてクリニック',
  subject: 'C=JP, O=はこだてクリニック, CN=0110113719',
  serial: '3bd6dfc9702a224c04',
  fingerprint: 'ab'.repeat(32),
  issuer: 'C=JP, O=sekisho, CN=sekisho Issuing CA 1',
  notAfter: new Date('2028-11-22T00:00:00Z'),
  certificate: Buffer.alloc(0),
  chain: [],
  pinned: false,
};

const CASES: [string, string, string, number, string | undefined][] = [
  ['IPv4', '192.0.2.7', '198.51.100.1', 0x11, '192.0.2.7'],
  ['IPv4-mapped IPv6 is sent as IPv4', '::ffff:192.0.2.7', '::ffff:198.51.100.1', 0x11, '192.0.2.7'],
  ['IPv6', '2001:db8::7', '2001:db8:0:1::1', 0x21, '2001:db8:0:0:0:0:0:7'],
  ['mixed families: UNSPEC, no addresses', '2001:db8::7', '198.51.100.1', 0x00, undefined],
];

for (const [name, source, destination, family, parsedSource] of CASES) {
  test(`PROXY v2 header round trip, ${name}: addresses, ports and the identity TLVs`, () => {
    const h = proxyV2Header({ source: { address: source, port: 50123 }, destination: { address: destination, port: 2575 }, connectionId: 'c-1', tls: { version: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' }, identity });
    const parsed = parseProxyV2(Buffer.concat([h, Buffer.from('MSH|')]))!;
    assert.equal(parsed.length, h.length);
    assert.equal(parsed.family, family);
    assert.deepEqual(parsed.source, parsedSource ? { address: parsedSource, port: 50123 } : undefined);
    assert.equal(JSON.parse(parsed.tlvs.get(PP2_TYPE_SEKISHO_IDENTITY)!.toString()).facilityNumber, '0110113719');
    assert.ok(parsed.tlvs.get(PP2_TYPE_SSL)!.includes(Buffer.concat([Buffer.from([PP2_SUBTYPE_SSL_CN, 0, 10]), Buffer.from('0110113719')])));
  });
}
