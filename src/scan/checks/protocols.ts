import { result, type Check } from '../check.js';

const offered = (f: Parameters<Check['run']>[0]) => f.protocols.filter((p) => p.supported).map((p) => p.protocol);

export const protocolVersions: Check = {
  id: 'protocol-versions',
  title: 'Protocol versions',
  cites: 'CRYPTREC GL-3001 4.1; MHLW 6.0 システム運用編 13章 (TLS 1.2 or newer)',
  effective: '2020-07-07',
  run(f, p) {
    const on = offered(f);
    const forbidden = on.filter((v) => !p.protocolsAllowed.includes(v));
    const required = `only ${p.protocolsAllowed.join(', ')}`;
    if (on.length === 0) return result('fail', 'no protocol version completed a handshake', required);
    if (forbidden.length) return result('fail', `offers ${forbidden.join(', ')} (all offered: ${on.join(', ')})`, required);
    return result('pass', `offers ${on.join(', ')}`, required);
  },
};

export const preferredProtocols: Check = {
  id: 'protocol-preferred',
  title: 'Preferred protocol (TLS 1.3)',
  cites: 'MHLW 6.0 システム運用編 13章 (TLS 1.3 を基本とし、困難な場合は TLS 1.2)',
  effective: '2023-05-31',
  run(f, p) {
    const on = offered(f);
    const missing = p.protocolsPreferred.filter((v) => !on.includes(v));
    return missing.length ? result('warn', `does not offer ${missing.join(', ')}`, `should offer ${p.protocolsPreferred.join(', ')}`) : result('pass', `offers ${p.protocolsPreferred.join(', ')}`, `should offer ${p.protocolsPreferred.join(', ')}`);
  },
};
