import { isIPv6 } from 'node:net';

/**
 * What per-address caps and rate limits count by: an IPv4 address as it is
 * (an IPv4-mapped IPv6 address as its IPv4 form), an IPv6 address by its /64
 * prefix. One IPv6 host usually holds a whole /64 and can pick a new source
 * address for every connection; counting exact addresses would let it past
 * every per-address limit.
 */
export function addressKey(address: string): string {
  const a = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
  if (!isIPv6(a)) return a;
  const zoneless = a.split('%')[0]!;
  const [head = '', tail = ''] = zoneless.split('::');
  const left = head ? head.split(':') : [];
  const right = zoneless.includes('::') ? (tail ? tail.split(':') : []) : [];
  // An embedded IPv4 tail (::1.2.3.4) stands in the last 32 bits, beyond the /64: ignore it.
  const groups = zoneless.includes('::') ? [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => (parseInt(g, 16) || 0).toString(16))
    .join(':')}::/64`;
}
