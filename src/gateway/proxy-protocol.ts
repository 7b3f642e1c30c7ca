import { isIPv4, isIPv6 } from 'node:net';
import type { ClientIdentity } from './client-identity.js';

/**
 * PROXY protocol version 2 (haproxy's proxy-protocol.txt §2.2): the header a
 * TCP listener sends its upstream before the client's bytes, carrying the
 * client's address and, in TLVs, the TLS facts (PP2_TYPE_SSL with
 * PP2_SUBTYPE_SSL_VERSION/CN/CIPHER) and the verified identity. The identity
 * travels as JSON in the first custom TLV type (0xE0), so upstreams that know
 * nothing of sekisho skip it and those that do read the facility number.
 */
export const PP2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
export const PP2_TYPE_UNIQUE_ID = 0x05;
export const PP2_TYPE_SSL = 0x20;
export const PP2_SUBTYPE_SSL_VERSION = 0x21;
export const PP2_SUBTYPE_SSL_CN = 0x22;
export const PP2_SUBTYPE_SSL_CIPHER = 0x23;
export const PP2_TYPE_SEKISHO_IDENTITY = 0xe0;
const PP2_CLIENT_SSL = 0x01;
const PP2_CLIENT_CERT_CONN = 0x02;

function tlv(type: number, value: Buffer): Buffer {
  const h = Buffer.alloc(3);
  h[0] = type;
  h.writeUInt16BE(value.length, 1);
  return Buffer.concat([h, value]);
}

const unmapped = (a: string) => (a.startsWith('::ffff:') && isIPv4(a.slice(7)) ? a.slice(7) : a);

function ipBytes(a: string, family: 4 | 6): Buffer {
  if (family === 4) return Buffer.from(a.split('.').map(Number));
  const [head, tail] = a.includes('::') ? a.split('::') : [a, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g || '0', 16), i * 2));
  return out;
}

export interface ProxyHeaderInput {
  source: { address: string; port: number };
  destination: { address: string; port: number };
  connectionId: string;
  tls: { version: string; cipher: string };
  identity: ClientIdentity;
}

export function proxyV2Header(h: ProxyHeaderInput): Buffer {
  const src = unmapped(h.source.address);
  const dst = unmapped(h.destination.address);
  // Both ends of one family: TCP over IPv4 (0x11) or IPv6 (0x21), addresses then ports; else UNSPEC (0x00), no address block.
  const family = isIPv4(src) && isIPv4(dst) ? 4 : isIPv6(src) && isIPv6(dst) ? 6 : undefined;
  const size = family === 4 ? 4 : 16;
  const fam = family === 4 ? 0x11 : family === 6 ? 0x21 : 0x00;
  const addr = Buffer.alloc(family ? 2 * size + 4 : 0);
  if (family) {
    ipBytes(src, family).copy(addr, 0);
    ipBytes(dst, family).copy(addr, size);
    addr.writeUInt16BE(h.source.port, 2 * size);
    addr.writeUInt16BE(h.destination.port, 2 * size + 2);
  }
  const id = h.identity;
  const ssl = Buffer.concat([
    Buffer.from([PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN, 0, 0, 0, 0]), // client flags, verify = 0 (verified)
    tlv(PP2_SUBTYPE_SSL_VERSION, Buffer.from(h.tls.version)),
    tlv(PP2_SUBTYPE_SSL_CN, Buffer.from(id.deviceName ?? id.facilityNumber ?? id.subject)),
    tlv(PP2_SUBTYPE_SSL_CIPHER, Buffer.from(h.tls.cipher)),
  ]);
  const identity = JSON.stringify({
    profile: id.profile,
    facilityNumber: id.facilityNumber,
    facilityName: id.facilityName,
    deviceName: id.deviceName,
    serial: id.serial,
    fingerprint: id.fingerprint,
    subject: id.subject,
  });
  const tlvs = Buffer.concat([tlv(PP2_TYPE_UNIQUE_ID, Buffer.from(h.connectionId).subarray(0, 128)), tlv(PP2_TYPE_SSL, ssl), tlv(PP2_TYPE_SEKISHO_IDENTITY, Buffer.from(identity))]);
  const fixed = Buffer.alloc(4);
  fixed[0] = 0x21; // version 2, PROXY
  fixed[1] = fam;
  fixed.writeUInt16BE(addr.length + tlvs.length, 2);
  return Buffer.concat([PP2_SIGNATURE, fixed, addr, tlvs]);
}

export interface ParsedProxyHeader {
  length: number;
  family: number;
  source?: { address: string; port: number };
  tlvs: Map<number, Buffer>;
}

/** Reads a PROXY v2 header from the start of `buf` (upstream side; tests). Returns undefined when more bytes are needed; throws when it is not one. */
export function parseProxyV2(buf: Buffer): ParsedProxyHeader | undefined {
  if (buf.length < 16) return undefined;
  if (!buf.subarray(0, 12).equals(PP2_SIGNATURE) || buf[12]! >> 4 !== 2) throw new Error('not a PROXY protocol v2 header');
  const len = buf.readUInt16BE(14);
  if (buf.length < 16 + len) return undefined;
  const family = buf[13]!;
  let off = 16;
  let source: ParsedProxyHeader['source'];
  if (family === 0x11) {
    source = { address: [...buf.subarray(16, 20)].join('.'), port: buf.readUInt16BE(24) };
    off += 12;
  } else if (family === 0x21) {
    const g: string[] = [];
    for (let i = 0; i < 8; i++) g.push(buf.readUInt16BE(16 + i * 2).toString(16));
    source = { address: g.join(':'), port: buf.readUInt16BE(48) };
    off += 36;
  }
  const tlvs = new Map<number, Buffer>();
  while (off + 3 <= 16 + len) {
    const n = buf.readUInt16BE(off + 1);
    if (off + 3 + n > 16 + len) throw new Error('PROXY v2 TLV overruns the header');
    tlvs.set(buf[off]!, buf.subarray(off + 3, off + 3 + n));
    off += 3 + n;
  }
  return { length: 16 + len, family, ...(source ? { source } : {}), tlvs };
}
