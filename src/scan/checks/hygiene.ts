import { result, type Check } from '../check.js';

export const secureRenegotiation: Check = {
  id: 'secure-renegotiation',
  title: 'Secure renegotiation',
  cites: 'RFC 5746',
  effective: '2010-02-01',
  run(f) {
    const required = 'renegotiation_info (RFC 5746) when TLS ≤ 1.2 is offered';
    const old = f.protocols.some((p) => p.supported && p.protocol !== 'TLSv1.3');
    if (!old) return result('info', 'TLS 1.3 only (no renegotiation)', required);
    if (f.secureRenegotiation === undefined) return result('skip', 'not determined', required);
    return f.secureRenegotiation ? result('pass', 'supported', required) : result('fail', 'not supported', required);
  },
};

export const compression: Check = {
  id: 'tls-compression',
  title: 'TLS compression',
  cites: 'RFC 7457 §2.6 (CRIME); CRYPTREC GL-3001',
  effective: '2020-07-07',
  run(f) {
    const required = 'no TLS compression';
    if (f.compression === undefined) return result('skip', 'not determined', required);
    return f.compression ? result('fail', 'the server accepted DEFLATE compression', required) : result('pass', 'refused', required);
  },
};

export const fallbackScsv: Check = {
  id: 'fallback-scsv',
  title: 'Downgrade protection (TLS_FALLBACK_SCSV)',
  cites: 'RFC 7507',
  effective: '2015-04-01',
  run(f) {
    const required = 'inappropriate_fallback to a downgraded hello';
    switch (f.fallbackScsv) {
      case 'supported':
        return result('pass', 'supported', required);
      case 'not-supported':
        return result('warn', 'a downgraded hello with the SCSV was accepted', required);
      case 'not-applicable':
        return result('info', 'only one protocol version offered', required);
      default:
        return result('skip', 'not determined', required);
    }
  },
};

export const hsts: Check = {
  id: 'hsts',
  title: 'HTTP Strict Transport Security',
  cites: 'RFC 6797; CRYPTREC GL-3001 (HTTPS では HSTS を推奨)',
  effective: '2020-07-07',
  run(f) {
    const required = 'Strict-Transport-Security with max-age ≥ 1 year (HTTPS servers)';
    if (f.hsts === undefined) return result('skip', 'not an HTTPS server or not reachable over HTTP', required);
    if (f.hsts.header === null) return result('warn', 'no Strict-Transport-Security header', required);
    return (f.hsts.maxAge ?? 0) >= 31_536_000 ? result('pass', f.hsts.header, required) : result('warn', `${f.hsts.header} (max-age under a year)`, required);
  },
};
