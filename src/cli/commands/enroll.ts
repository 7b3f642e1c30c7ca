import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { writeFileAtomic } from '../../ca/index.js';
import { badRequest, SekishoError } from '../../errors/index.js';
import { kindOfStatus } from '../../web/index.js';
import { certificateToPem, certificatesFromPem, pemOrDer } from '../../pki/index.js';
import { exactlyOne, JSON_OPTION, required, type Command } from '../command.js';
import { secretFromFile } from '../secrets.js';
import { checkOutputPath } from '../output-file.js';

interface HttpAnswer {
  status: number;
  body: Buffer;
}

function post(url: URL, body: Buffer | undefined, trust: { ca?: string; insecure?: boolean }): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: body ? 'POST' : 'GET',
        headers: body ? { 'Content-Type': 'application/json', 'Content-Length': String(body.length) } : {},
        minVersion: 'TLSv1.2',
        ...(trust.ca ? { ca: trust.ca } : {}),
        rejectUnauthorized: !trust.insecure,
        timeout: 60_000,
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (e: NodeJS.ErrnoException) =>
      reject(badRequest('PORTAL_UNREACHABLE', `cannot reach the portal ${url.origin}: ${e.code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' || e.code === 'SELF_SIGNED_CERT_IN_CHAIN' || /certificate/i.test(e.message) ? `its TLS certificate is not trusted by the given root (${e.code ?? e.message})` : (e.code ?? e.message)}`)),
    );
    req.end(body);
  });
}

/** A root typed from the letter: 64 hex (SHA-256) or 40 hex (SHA-1), colons and spaces allowed. */
export function parseFingerprint(input: string): { hash: 'sha256' | 'sha1'; hex: string } {
  const hex = input.replace(/[\s:]/g, '').toLowerCase();
  if (/^[0-9a-f]{64}$/.test(hex)) return { hash: 'sha256', hex };
  if (/^[0-9a-f]{40}$/.test(hex)) return { hash: 'sha1', hex };
  throw badRequest('FINGERPRINT_INVALID', '--root-fingerprint takes the root thumbprint from the letter: 64 hex digits (SHA-256) or 40 (SHA-1)');
}


export const enrollCommand: Command = {
  path: ['enroll'],
  summary: "download a facility's certificate from the portal with a notice's IDs (as the clinic would in a browser)",
  options: {
    portal: { type: 'string', description: 'portal URL, e.g. https://ca.example.jp:8080/', valueName: 'URL' },
    'request-id': { type: 'string', description: 'request ID from the notice', valueName: 'ID' },
    'reference-id': { type: 'string', description: 'reference ID from the notice', valueName: 'ID' },
    'password-file': { type: 'string', description: 'file holding the password for the PKCS#12', valueName: 'FILE' },
    out: { type: 'string', description: 'PKCS#12 file to write', valueName: 'FILE' },
    ca: { type: 'string', description: 'trust the portal through this root certificate (PEM or DER)', valueName: 'FILE' },
    'root-fingerprint': { type: 'string', description: "trust the root whose SHA-256 (or SHA-1) thumbprint is printed on the letter", valueName: 'HEX' },
    'root-out': { type: 'string', description: 'also write the root certificate (DER .cer)', valueName: 'FILE' },
    legacy: { type: 'boolean', description: 'PKCS#12 for old Windows importers (3DES, SHA-1 MAC)' },
    key: { type: 'string', description: 'key type: rsa-2048 (default) or ecdsa-p256', valueName: 'TYPE' },
    ...JSON_OPTION,
  },
  validators: [required('portal', 'request-id', 'reference-id', 'password-file', 'out'), exactlyOne('ca', 'root-fingerprint')],
  run: async (ctx) => {
    const v = ctx.values;
    let portal: URL;
    try {
      portal = new URL(v.portal as string);
    } catch {
      throw badRequest('PORTAL_URL_INVALID', `--portal "${String(v.portal).slice(0, 80)}" is not a URL`);
    }
    if (portal.protocol !== 'https:') throw badRequest('PORTAL_URL_INVALID', '--portal must be an https:// URL');
    const out = checkOutputPath(v.out as string, '--out');
    const rootOut = v['root-out'] ? checkOutputPath(v['root-out'] as string, '--root-out') : undefined;
    const password = secretFromFile(v['password-file'] as string, 'PKCS#12 password');
    let rootPem: string;
    if (v.ca) {
      let raw: Buffer;
      try {
        raw = readFileSync(v.ca as string);
      } catch {
        throw badRequest('CA_FILE_UNREADABLE', `cannot read --ca ${v.ca as string}`);
      }
      const pems = certificatesFromPem(raw.toString('latin1'));
      rootPem = pems.length ? pems.map(certificateToPem).join('') : certificateToPem(pemOrDer(raw, ['CERTIFICATE'], 'CA_FILE_INVALID', 'root certificate'));
    } else {
      // The root is fetched unauthenticated, then authenticated by the thumbprint from the paper letter.
      const fp = parseFingerprint(v['root-fingerprint'] as string);
      const got = await post(new URL('/root.cer', portal), undefined, { insecure: true });
      if (got.status !== 200 || createHash(fp.hash).update(got.body).digest('hex') !== fp.hex) {
        throw badRequest('ROOT_FINGERPRINT_MISMATCH', "the portal's root certificate does not have the thumbprint you gave; check it against the letter, and do not continue if it still differs");
      }
      rootPem = certificateToPem(got.body);
    }
    const body = Buffer.from(JSON.stringify({ requestId: v['request-id'], referenceId: v['reference-id'], password, legacy: Boolean(v.legacy), ...(v.key ? { keyType: v.key } : {}) }));
    const answer = await post(new URL('/api/enroll', portal), body, { ca: rootPem });
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(answer.body.toString('utf8')) as Record<string, unknown>;
    } catch {
      throw badRequest('PORTAL_ANSWER_INVALID', `the portal answered HTTP ${answer.status} without JSON; is --portal the sekisho portal?`);
    }
    if (answer.status !== 200) {
      const err = (json.error ?? {}) as { code?: string; message?: string; ja?: string };
      throw new SekishoError(kindOfStatus(answer.status), err.code ?? 'PORTAL_ERROR', err.message ?? `HTTP ${answer.status}`, err.ja ? { ja: err.ja } : {});
    }
    const p12 = Buffer.from(String(json.pkcs12), 'base64');
    writeFileAtomic(out, p12, 0o600);
    if (rootOut) writeFileAtomic(rootOut, Buffer.from(String(json.root), 'base64'));
    const facility = json.facility as { number: string; name: string };
    const summary = { facility, serial: json.serial, notAfter: json.notAfter, file: out, ...(rootOut ? { root: rootOut } : {}), ...(json.download ? { download: json.download } : {}) };
    if (v.json) return ctx.json(summary);
    ctx.out(`certificate ${String(json.serial)} for ${facility.number} ${facility.name} → ${out} (valid until ${String(json.notAfter).slice(0, 10)})`);
    ctx.out(String(json.thumbprints).replace(/\r\n/g, '\n').trimEnd());
  },
};
