import type { TLSSocket } from 'node:tls';
import { Enrollment, type CertificateAuthority } from '../ca/index.js';
import { forbidden, malformed, unauthorized, unsupportedMediaType } from '../errors/index.js';
import { certsOnlyPkcs7, parseCsr } from '../pki/index.js';
import { clientAddress, mediaType, publicError, readBody, send, wrongMethod, type ServerErrorLog, type WebContext } from './http.js';
import { admitNoticeAttempt, type AttemptLimiter } from './rate-limit.js';

export const EST_PREFIX = '/.well-known/est/';
const EST_LIMIT = 64 * 1024;
const REALM = 'Basic realm="sekisho EST", charset="UTF-8"';

/** RFC 7617 Basic credentials: user-id (the request ID or code ID) and password (the reference ID or code). */
export function parseBasicAuth(header: string | undefined): { user: string; password: string } | undefined {
  if (header === undefined) return undefined;
  const m = /^Basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(header);
  if (!m || header.length > 1024) throw malformed('EST_AUTH_MALFORMED', 'the Authorization header is not HTTP Basic (RFC 7617)');
  const text = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 0) throw malformed('EST_AUTH_MALFORMED', 'the Basic credentials have no ":" between user and password');
  return { user: text.slice(0, colon), password: text.slice(colon + 1) };
}

/**
 * The body of simpleenroll / simplereenroll: base64 DER PKCS#10 (RFC 7030
 * §4.2.1, Content-Transfer-Encoding base64), tolerating line breaks, a PEM
 * block, or raw DER.
 */
export function estCsrDer(body: Buffer): Buffer {
  if (body.length === 0) throw malformed('CSR_MISSING', 'the request carries no CSR; send base64 DER PKCS#10 as application/pkcs10');
  if (body[0] === 0x30) return body;
  const text = body.toString('latin1');
  if (text.includes('-----BEGIN')) return parseCsr(text).der;
  const b64 = text.replace(/[\r\n\t ]+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 === 1) throw malformed('CSR_MALFORMED', 'the body is not base64 DER PKCS#10');
  return Buffer.from(b64, 'base64');
}

const base64Lines = (der: Buffer) => `${der.toString('base64').match(/.{1,64}/g)!.join('\n')}\n`;

function sendPkcs7(certs: Buffer[]): Response {
  return send(200, 'application/pkcs7-mime; smime-type=certs-only', base64Lines(certsOnlyPkcs7(certs)), { 'Content-Transfer-Encoding': 'base64', 'Cache-Control': 'no-store' });
}

function sendEstError(e: unknown, log: ServerErrorLog | undefined): Response {
  const p = publicError(e, log);
  const extra: Record<string, string> = { ...p.headers, ...(p.status === 401 ? { 'WWW-Authenticate': REALM } : {}) };
  return send(p.status, 'text/plain; charset=utf-8', `${p.code}: ${p.message}\n${p.ja ? `${p.ja}\n` : ''}`, extra);
}

/** EST (RFC 7030) at /.well-known/est/: cacerts, simpleenroll, simplereenroll. */
export class EstService {
  readonly #ca: CertificateAuthority;
  readonly #enrollment: Enrollment;
  readonly #limiter: AttemptLimiter;
  readonly #log: ServerErrorLog | undefined;

  constructor(o: { authority: CertificateAuthority; limiter: AttemptLimiter; log?: ServerErrorLog }) {
    this.#ca = o.authority;
    this.#enrollment = new Enrollment(o.authority);
    this.#limiter = o.limiter;
    this.#log = o.log;
  }

  async handle(c: WebContext, operation: string): Promise<Response> {
    const req = c.req.raw;
    try {
      if (operation === 'cacerts') {
        // 405 with Allow (RFC 9110 §15.5.6); HEAD is answered as GET, as on every GET path of the web edge.
        if (req.method !== 'GET' && req.method !== 'HEAD') return wrongMethod('GET');
        return sendPkcs7(this.#ca.chain());
      }
      if (operation !== 'simpleenroll' && operation !== 'simplereenroll') {
        return send(404, 'text/plain; charset=utf-8', `EST_OPERATION_UNKNOWN: ${EST_PREFIX} offers cacerts, simpleenroll and simplereenroll\n`);
      }
      if (req.method !== 'POST') return wrongMethod('POST');
      if (mediaType(req) !== 'application/pkcs10') throw unsupportedMediaType('CONTENT_TYPE_UNSUPPORTED', 'send the CSR as application/pkcs10 (base64 DER)');
      const body = await readBody(req, EST_LIMIT);
      const source = { client: clientAddress(c), via: 'est' };
      if (operation === 'simpleenroll') {
        const auth = parseBasicAuth(req.headers.get('authorization') ?? undefined);
        if (!auth) throw unauthorized('EST_AUTH_REQUIRED', 'simpleenroll needs HTTP Basic credentials: the request ID and reference ID of a notice (or an EST code)');
        await admitNoticeAttempt(this.#limiter, this.#ca.notices, source);
        const csr = parseCsr(estCsrDer(body));
        const issued = await this.#enrollment.withCsr({ requestId: auth.user, referenceId: auth.password }, source, csr);
        return sendPkcs7([issued.der]);
      }
      const peer = (c.env.incoming.socket as TLSSocket).getPeerCertificate?.(false);
      if (!peer || !peer.raw) throw forbidden('CLIENT_CERT_REQUIRED', 'simplereenroll needs your current certificate over mutual TLS (curl --cert … --key …)');
      const csr = parseCsr(estCsrDer(body));
      const issued = await this.#enrollment.reenroll(peer.raw, csr, source);
      return sendPkcs7([issued.der]);
    } catch (e) {
      return sendEstError(e, this.#log);
    }
  }
}
