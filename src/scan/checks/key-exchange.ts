import { result, type Check } from '../check.js';

const GROUP_BITS: Record<string, number> = {
  x25519: 256, x448: 448, secp256r1: 256, secp384r1: 384, secp521r1: 521,
  ffdhe2048: 2048, ffdhe3072: 3072, ffdhe4096: 4096, ffdhe6144: 6144, ffdhe8192: 8192,
  secp224r1: 224, secp192r1: 192, secp256k1: 256, brainpoolP256r1: 256, brainpoolP384r1: 384, brainpoolP512r1: 512,
};

export const keyExchange: Check = {
  id: 'key-exchange',
  title: 'Key exchange groups and DH size',
  cites: 'CRYPTREC GL-3001 (ECDHE ≥ 256 bits, DHE ≥ 2048 bits)',
  effective: '2020-07-07',
  run(f, p) {
    const required = `ECDHE groups ≥ ${p.keyExchange.ecdheMinBits} bits, DHE ≥ ${p.keyExchange.dheMinBits} bits`;
    const weak: string[] = [];
    for (const g of f.groups) {
      const bits = GROUP_BITS[g];
      const min = g.startsWith('ffdhe') ? p.keyExchange.dheMinBits : p.keyExchange.ecdheMinBits;
      if (bits === undefined || bits < min) weak.push(`${g}${bits ? ` (${bits} bits)` : ''}`);
    }
    if (f.dheBits !== undefined && f.dheBits < p.keyExchange.dheMinBits) weak.push(`DHE ${f.dheBits} bits`);
    const found = [f.groups.length ? `groups ${f.groups.join(', ')}` : 'no named groups seen', f.dheBits ? `DHE ${f.dheBits} bits` : ''].filter(Boolean).join('; ');
    return weak.length ? result('fail', `accepts ${weak.join(', ')}`, required) : result('pass', found, required);
  },
};
