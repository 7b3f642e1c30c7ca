import type { IncomingMessage, ServerResponse } from 'node:http';
import { REVOCATION_PATHS, type CertificateAuthority, type RevocationPublisher } from '../ca/index.js';
import { OCSP_MAX_REQUEST } from '../pki/index.js';
import { mediaType, readBody, send } from './http.js';

const text = 'text/plain; charset=utf-8';

/**
 * The revocation endpoints, the same over the portal's HTTPS and the plain
 * HTTP revocation listener: the issuing CA's CRL, the root's CRL, OCSP
 * (POST, and GET /ocsp/{base64}, RFC 6960 Appendix A.1) and the two CA
 * certificates (caIssuers). Returns false for any other path.
 */
export function revocationRoutes(ca: CertificateAuthority, publisher: RevocationPublisher): (req: IncomingMessage, res: ServerResponse, path: string) => Promise<boolean> {
  const wrongMethod = (res: ServerResponse, allow: string) => send(res, 405, text, `METHOD_NOT_ALLOWED: use ${allow}\n`, { Allow: allow });
  return async (req, res, path) => {
    const method = req.method ?? 'GET';
    const get = method === 'GET' || method === 'HEAD';
    if (path === REVOCATION_PATHS.ocsp || path.startsWith(`${REVOCATION_PATHS.ocsp}/`)) {
      let body: Buffer;
      if (method === 'POST' && path === REVOCATION_PATHS.ocsp) {
        if (mediaType(req) !== 'application/ocsp-request') {
          send(res, 415, text, 'CONTENT_TYPE_UNSUPPORTED: send application/ocsp-request\n');
          return true;
        }
        try {
          body = await readBody(req, OCSP_MAX_REQUEST);
        } catch {
          send(res, 413, text, 'BODY_TOO_LARGE\n', { Connection: 'close' });
          return true;
        }
      } else if (get && path.startsWith(`${REVOCATION_PATHS.ocsp}/`)) {
        let b64: string;
        try {
          b64 = decodeURIComponent(path.slice(REVOCATION_PATHS.ocsp.length + 1));
        } catch {
          b64 = '!';
        }
        body = /^[A-Za-z0-9+/]*={0,2}$/.test(b64) && b64.length <= OCSP_MAX_REQUEST * 2 ? Buffer.from(b64, 'base64') : Buffer.alloc(0);
      } else {
        wrongMethod(res, 'POST, GET');
        return true;
      }
      send(res, 200, 'application/ocsp-response', await publisher.ocsp(body), { 'Cache-Control': 'max-age=60' });
      return true;
    }
    const resource = async (): Promise<{ type: string; body: Buffer | undefined; headers?: Record<string, string> } | undefined> => {
      switch (path) {
        case REVOCATION_PATHS.crl:
          return { type: 'application/pkix-crl', body: await publisher.crl(), headers: { 'Cache-Control': 'max-age=60' } };
        case REVOCATION_PATHS.rootCrl:
          return { type: 'application/pkix-crl', body: ca.rootCrl(), headers: { 'Cache-Control': 'max-age=3600' } };
        case REVOCATION_PATHS.issuingCert:
          return { type: 'application/pkix-cert', body: ca.issuingDer };
        case REVOCATION_PATHS.rootCert:
          return { type: 'application/pkix-cert', body: ca.rootDer, headers: { 'Content-Disposition': 'attachment; filename="root-ca.cer"' } };
      }
      return undefined;
    };
    if (!(Object.values(REVOCATION_PATHS) as string[]).includes(path)) return false;
    if (!get) {
      wrongMethod(res, 'GET');
      return true;
    }
    const r = await resource();
    if (!r?.body) send(res, 404, text, 'NOT_PUBLISHED: this CA has no such file yet\n');
    else send(res, 200, r.type, r.body, r.headers ?? {});
    return true;
  };
}
