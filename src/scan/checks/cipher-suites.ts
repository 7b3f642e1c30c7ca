import { classifySuite } from '../../policy/index.js';
import { result, type Check } from '../check.js';

export { classifySuite };

export const tls12Suites: Check = {
  id: 'cipher-suites-tls12',
  title: 'Cipher suites (TLS 1.2 and older)',
  cites: 'CRYPTREC GL-3001 4.2 (high: forward secrecy and AEAD only)',
  effective: '2020-07-07',
  run(f, p) {
    const accepted = [...new Set(f.protocols.filter((x) => x.protocol !== 'TLSv1.3' && x.supported).flatMap((x) => x.suites))];
    const required = p.suiteRule.aead ? 'ECDHE/DHE with AES-GCM, AES-CCM or ChaCha20-Poly1305 only' : `the ${p.name} list; no export, NULL, anonymous, RC4, DES or 3DES`;
    if (accepted.length === 0) return result('info', 'no TLS 1.2-or-older suites accepted', required);
    const forbidden = accepted.filter((s) => classifySuite(s, p) === 'forbidden');
    const unlisted = accepted.filter((s) => classifySuite(s, p) === 'secure-unlisted');
    if (forbidden.length) return result('fail', `accepts ${forbidden.join(', ')}`, required);
    if (unlisted.length) return result('warn', `accepts, besides listed suites, ${unlisted.join(', ')} (secure, but not in the profile's list)`, required);
    return result('pass', `accepts ${accepted.length} suites, all listed: ${accepted.join(', ')}`, required);
  },
};

export const tls13Suites: Check = {
  id: 'cipher-suites-tls13',
  title: 'Cipher suites (TLS 1.3)',
  cites: 'CRYPTREC GL-3001 4.2 (TLS 1.3 suites)',
  effective: '2020-07-07',
  run(f, p) {
    const t13 = f.protocols.find((x) => x.protocol === 'TLSv1.3');
    const required = `a subset of ${p.tls13SuitesListed.join(', ')}`;
    if (!t13?.supported) return result('info', 'TLS 1.3 not offered', required);
    const extra = t13.suites.filter((s) => !p.tls13SuitesListed.includes(s));
    return extra.length ? result('fail', `accepts ${extra.join(', ')}`, required) : result('pass', `accepts ${t13.suites.join(', ')}`, required);
  },
};

export const serverOrder: Check = {
  id: 'server-cipher-order',
  title: 'Server cipher order',
  cites: 'CRYPTREC GL-3001 (サーバ側で暗号スイートの優先順位を設定)',
  effective: '2020-07-07',
  run(f) {
    const judged = f.protocols.filter((x) => x.supported && x.serverOrder !== undefined && x.protocol !== 'TLSv1.3');
    const required = 'the server chooses by its own preference order';
    if (judged.length === 0) return result('info', 'not determinable (fewer than two suites per version)', required);
    const client = judged.filter((x) => !x.serverOrder).map((x) => x.protocol);
    return client.length ? result('warn', `follows the client's order for ${client.join(', ')}`, required) : result('pass', 'enforces its own order', required);
  },
};
