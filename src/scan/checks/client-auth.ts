import { result, type Check } from '../check.js';

export const clientAuthentication: Check = {
  id: 'client-certificate',
  title: 'Client certificate required',
  cites: 'MHLW 6.0 システム運用編 13章; IHE ITI-19 (mutual authentication)',
  effective: '2023-05-31',
  run(f, p) {
    const required = p.clientCertificate === 'required' ? 'the server requires a client certificate' : 'not required by this profile';
    const ca = f.clientAuth?.caNames.length ? `; acceptable CAs: ${f.clientAuth.caNames.join(' | ')}` : '';
    if (!f.clientAuth) return result(p.clientCertificate === 'required' ? 'fail' : 'info', 'could not be determined', required);
    const where = f.clientAuth.enforcedAt === 'http' ? ' (the handshake completes; the server then answers an HTTP error)' : f.clientAuth.enforcedAt === 'handshake' ? ' (refused in the TLS handshake)' : '';
    const found = f.clientAuth.required ? `required${where}${ca}` : f.clientAuth.requested ? `requested but not required${ca}` : 'not requested';
    if (p.clientCertificate === 'required') return result(f.clientAuth.required ? 'pass' : 'fail', found, required);
    return result('info', found, required);
  },
};
