import { backupAdvice, Enrollment, redemptionText, safeFileName, type CertificateAuthority, type EnrollmentResult, type IssuanceNotices, type NoticeRedemption } from '../ca/index.js';
import { unsupportedMediaType } from '../errors/index.js';
import { certificateToPem, fingerprint, parseCsr } from '../pki/index.js';
import { clientAddress, mediaType, publicError, readBody, refuseCrossSite, send, sendError, sendJson, type ServerErrorLog, type WebContext } from './http.js';
import { parseCsrEnrollJson, parseEnrollForm, parseEnrollJson } from './forms.js';
import { portalPage, resultPage, type DownloadFile } from './portal-page.js';
import { zipStore } from './zip.js';
import { noticeIdProblem } from '../ca/index.js';
import { admitNoticeAttempt, type AttemptLimiter } from './rate-limit.js';

const FORM_LIMIT = 16 * 1024;
const JSON_LIMIT = 64 * 1024;

/** The text that travels with the files: what was issued and the root's thumbprints (never the password). */
export function thumbprintText(r: EnrollmentResult, rootDer: Buffer, p12Name: string): string {
  return [
    'クライアント証明書 / Client certificate',
    '',
    `医療機関名 / Facility:   ${r.facility.name}`,
    `医療機関番号 / Number:   ${r.facility.number}`,
    `証明書ファイル / File:   ${p12Name}`,
    `シリアル番号 / Serial:   ${r.serial}`,
    `有効期限 / Valid until:  ${r.view.notAfter.toISOString().slice(0, 10)}`,
    `証明書の拇印 / Certificate SHA-256: ${fingerprint(r.der)}`,
    '',
    'ルート証明書の拇印 / Root certificate thumbprints (root-ca.cer):',
    `  SHA-256: ${fingerprint(rootDer)}`,
    `  SHA-1:   ${fingerprint(rootDer, 'sha1')}`,
    '',
    '1. root-ca.cer の拇印が通知書と一致することを確認し、「信頼されたルート証明機関」にインストールします。',
    `2. ${p12Name} を開き、ダウンロード時に決めたパスワードでインストールします。`,
    '   Windows:「秘密キーの保護を強力にする」にはチェックを入れないでください。',
    '1. Check root-ca.cer against the notice\'s thumbprints, then trust it as a root.',
    `2. Open ${p12Name} with the password you chose. On Windows leave "Enable strong private key protection" unchecked.`,
    '',
    ...(r.redemption ? (({ ja, en }) => [ja, en, ''])(redemptionText(r.redemption)) : []),
    'バックアップと端末の入れ替え / Backup and a replacement PC:',
    ...backupLines(),
    '',
  ].join('\r\n');
}

function backupLines(): string[] {
  const a = backupAdvice('notice');
  return [...a.ja.map((t) => `- ${t}`), ...a.en.map((t) => `- ${t}`)];
}

/** The download's effect for a script or `sekisho enroll`: counts, the superseded serial, and the sentence to show (Japanese and English). */
function downloadJson(r: NoticeRedemption | undefined): Record<string, unknown> {
  if (!r) return {};
  return {
    download: { number: r.download, max: r.maxDownloads, left: r.left, ...(r.superseded ? { superseded: r.superseded.serial } : {}), ...redemptionText(r) },
    backup: backupAdvice('notice'),
  };
}

export interface PortalOptions {
  authority: CertificateAuthority;
  limiter: AttemptLimiter;
  /** Where the detail of errors a client is not shown goes (default: a JSON line on stderr). */
  log?: ServerErrorLog;
}

/** The enrollment portal: the page, the form post, and the JSON API the page's script and `sekisho enroll` use. */
export class Portal {
  readonly #ca: CertificateAuthority;
  readonly #enrollment: Enrollment;
  readonly #limiter: AttemptLimiter;
  readonly #notices: IssuanceNotices;
  readonly #log: ServerErrorLog | undefined;

  constructor(o: PortalOptions) {
    this.#log = o.log;
    this.#ca = o.authority;
    this.#enrollment = new Enrollment(o.authority);
    this.#limiter = o.limiter;
    this.#notices = o.authority.notices;
  }

  #page(error?: ReturnType<typeof publicError>, ids: { requestId?: string; referenceId?: string } = {}): string {
    return portalPage({
      organization: this.#ca.config.organization,
      rootSha256: fingerprint(this.#ca.rootDer),
      rootSha1: fingerprint(this.#ca.rootDer, 'sha1'),
      minPasswordLength: this.#ca.config.pkcs12.minPasswordLength,
      pkcs12Iterations: this.#ca.config.pkcs12.iterations,
      ...(error ? { error } : {}),
      ...ids,
    });
  }

  showPage(): Response {
    return send(200, 'text/html; charset=utf-8', this.#page(), { 'Cache-Control': 'no-store' });
  }

  /** Counts an attempt against the client's address; a refused one is thrown (its 1st, 2nd, 4th … of a window audited). */
  async #admit(c: WebContext, via: string): Promise<{ client: string; via: string }> {
    const source = { client: clientAddress(c), via };
    await admitNoticeAttempt(this.#limiter, this.#notices, source);
    return source;
  }

  #files(r: EnrollmentResult & { pkcs12: Buffer }): DownloadFile[] {
    const base = `${safeFileName(r.facility.name)}_${r.facility.number}`;
    const p12Name = `${base}.p12`;
    const files: DownloadFile[] = [
      { name: p12Name, type: 'application/x-pkcs12', data: r.pkcs12 },
      { name: 'root-ca.cer', type: 'application/pkix-cert', data: this.#ca.rootDer },
      { name: 'thumbprints.txt', type: 'text/plain; charset=utf-8', data: Buffer.from(thumbprintText(r, this.#ca.rootDer, p12Name), 'utf8') },
    ];
    return [{ name: `${base}.zip`, type: 'application/zip', data: Buffer.from(zipStore(files)) }, ...files];
  }

  /** POST /enroll (the form, works without script): the result page with the files, or the form with the reason. */
  async enrollForm(c: WebContext): Promise<Response> {
    let ids: { requestId?: string } = {};
    try {
      refuseCrossSite(c.req.raw, this.#ca.config.urls.portal);
      if (mediaType(c.req.raw) !== 'application/x-www-form-urlencoded') throw unsupportedMediaType('CONTENT_TYPE_UNSUPPORTED', 'send the form as application/x-www-form-urlencoded');
      const body = await readBody(c.req.raw, FORM_LIMIT);
      const source = await this.#admit(c, 'portal');
      const form = parseEnrollForm(body);
      // Only the request ID is put back in the form: the reference ID is a secret and is never echoed.
      if (noticeIdProblem('request', form.requestId) === undefined) ids = { requestId: form.requestId };
      const r = await this.#enrollment.withPkcs12(form, source, { password: form.password, legacy: form.legacy, ...(form.keyType ? { keyType: form.keyType } : {}) });
      return send(200, 'text/html; charset=utf-8', resultPage({ facilityName: r.facility.name, facilityNumber: r.facility.number, serial: r.serial, notAfter: r.view.notAfter, files: this.#files(r), ...(r.redemption ? { redemption: r.redemption } : {}) }), { 'Cache-Control': 'no-store' });
    } catch (e) {
      const p = publicError(e, this.#log);
      return send(p.status, 'text/html; charset=utf-8', this.#page(p, ids), { 'Cache-Control': 'no-store', ...p.headers });
    }
  }

  /** POST /api/enroll: JSON in, JSON out (PKCS#12 and root as base64); for `sekisho enroll`. */
  async enrollJson(c: WebContext): Promise<Response> {
    try {
      refuseCrossSite(c.req.raw, this.#ca.config.urls.portal);
      if (mediaType(c.req.raw) !== 'application/json') throw unsupportedMediaType('CONTENT_TYPE_UNSUPPORTED', 'send application/json');
      const body = await readBody(c.req.raw, JSON_LIMIT);
      const source = await this.#admit(c, 'api');
      const r = parseEnrollJson(body);
      const issued = await this.#enrollment.withPkcs12(r, source, { password: r.password, legacy: r.legacy, ...(r.keyType ? { keyType: r.keyType } : {}) });
      const p12Name = `${safeFileName(issued.facility.name)}_${issued.facility.number}.p12`;
      return sendJson(200, {
        facility: { number: issued.facility.number, name: issued.facility.name },
        serial: issued.serial,
        notAfter: issued.view.notAfter.toISOString(),
        pkcs12: issued.pkcs12.toString('base64'),
        fileName: p12Name,
        root: this.#ca.rootDer.toString('base64'),
        thumbprints: thumbprintText(issued, this.#ca.rootDer, p12Name),
        ...downloadJson(issued.redemption),
      });
    } catch (e) {
      return sendError(e, this.#log);
    }
  }

  /** POST /api/enroll-csr: the key was made in the browser; only its CSR arrives. Returns the certificate and chain (PEM). */
  async enrollCsr(c: WebContext): Promise<Response> {
    try {
      refuseCrossSite(c.req.raw, this.#ca.config.urls.portal);
      if (mediaType(c.req.raw) !== 'application/json') throw unsupportedMediaType('CONTENT_TYPE_UNSUPPORTED', 'send application/json');
      const body = await readBody(c.req.raw, JSON_LIMIT);
      const source = await this.#admit(c, 'portal-csr');
      const r = parseCsrEnrollJson(body);
      const csr = parseCsr(r.csr);
      const issued = await this.#enrollment.withCsr(r, source, csr);
      return sendJson(200, {
        facility: { number: issued.facility.number, name: issued.facility.name },
        serial: issued.serial,
        notAfter: issued.view.notAfter.toISOString(),
        certificate: certificateToPem(issued.der),
        chain: this.#ca.chain().map(certificateToPem),
        friendlyName: issued.facility.name,
        thumbprints: thumbprintText(issued, this.#ca.rootDer, `${safeFileName(issued.facility.name)}_${issued.facility.number}.p12`),
        ...downloadJson(issued.redemption),
      });
    } catch (e) {
      return sendError(e, this.#log);
    }
  }
}
