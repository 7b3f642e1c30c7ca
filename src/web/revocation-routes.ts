import { Hono } from 'hono';
import { REVOCATION_PATHS, type CertificateAuthority, type RevocationPublisher } from '../ca/index.js';
import { OCSP_MAX_REQUEST, ocspErrorResponse } from '../pki/index.js';
import { HTTP_STATUS, mediaType, publicError, readBody, route, send, wrongMethod, type ServerErrorLog, type WebContext, type WebEnv } from './http.js';

const text = 'text/plain; charset=utf-8';

/**
 * The revocation endpoints, the same over the portal's HTTPS and the plain
 * HTTP revocation listener: the issuing CA's CRL, the root's CRL, OCSP
 * (POST, and GET /ocsp/{base64}, RFC 6960 Appendix A.1) and the two CA
 * certificates (caIssuers). A Hono app to mount at `/`. An OCSP request the
 * responder cannot answer (its store or signer failing) still gets an
 * OCSPResponse (RFC 6960 §2.3: tryLater when the service is unavailable,
 * else internalError), never a problem page; the detail goes to `log`.
 */
export function revocationRoutes(ca: CertificateAuthority, publisher: RevocationPublisher, log?: ServerErrorLog): Hono<WebEnv> {
  const app = new Hono<WebEnv>();
  const ocsp = async (body: Buffer) => {
    try {
      return send(200, 'application/ocsp-response', await publisher.ocsp(body), { 'Cache-Control': 'max-age=60' });
    } catch (e) {
      const status = publicError(e, log).status === HTTP_STATUS.unavailable ? 'tryLater' : 'internalError';
      return send(200, 'application/ocsp-response', ocspErrorResponse(status), { 'Cache-Control': 'no-store' });
    }
  };
  const ocspRoute = async (c: WebContext): Promise<Response> => {
    // The path as sent (not Hono's decoded one): GET's request is base64 with %-escapes, decoded once here.
    const path = new URL(c.req.url).pathname;
    const method = c.req.method;
    if (method === 'POST' && path === REVOCATION_PATHS.ocsp) {
      if (mediaType(c.req.raw) !== 'application/ocsp-request') return send(415, text, 'CONTENT_TYPE_UNSUPPORTED: send application/ocsp-request\n');
      let body: Buffer;
      try {
        body = await readBody(c.req.raw, OCSP_MAX_REQUEST);
      } catch {
        return send(413, text, 'BODY_TOO_LARGE\n', { Connection: 'close' });
      }
      return ocsp(body);
    }
    if ((method === 'GET' || method === 'HEAD') && path.startsWith(`${REVOCATION_PATHS.ocsp}/`)) {
      let b64: string;
      try {
        b64 = decodeURIComponent(path.slice(REVOCATION_PATHS.ocsp.length + 1));
      } catch {
        b64 = '!';
      }
      return ocsp(/^[A-Za-z0-9+/]*={0,2}$/.test(b64) && b64.length <= OCSP_MAX_REQUEST * 2 ? Buffer.from(b64, 'base64') : Buffer.alloc(0));
    }
    return wrongMethod('POST, GET');
  };
  app.all(REVOCATION_PATHS.ocsp, ocspRoute);
  app.all(`${REVOCATION_PATHS.ocsp}/*`, ocspRoute);
  const file = (path: string, load: () => Promise<Buffer | undefined> | Buffer | undefined, type: string, headers: Record<string, string> = {}) =>
    route(app, path, ['GET'], async () => {
      const body = await load();
      return body ? send(200, type, body, headers) : send(404, text, 'NOT_PUBLISHED: this CA has no such file yet\n');
    });
  file(REVOCATION_PATHS.crl, () => publisher.crl(), 'application/pkix-crl', { 'Cache-Control': 'max-age=60' });
  file(REVOCATION_PATHS.rootCrl, () => ca.rootCrl(), 'application/pkix-crl', { 'Cache-Control': 'max-age=3600' });
  file(REVOCATION_PATHS.issuingCert, () => ca.issuingDer, 'application/pkix-cert');
  file(REVOCATION_PATHS.rootCert, () => ca.rootDer, 'application/pkix-cert', { 'Content-Disposition': 'attachment; filename="root-ca.cer"' });
  return app;
}
