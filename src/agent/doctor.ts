/**
 * `sekisho doctor`: diagnoses a facility's connection to the center step by
 * step — name resolution, TCP (optionally through the clinic's HTTP proxy),
 * TLS versions and suites, the center's chain against the letter's root
 * thumbprint, the token, the client certificate, its revocation status, and
 * the clock — and says in Japanese and English what is wrong and what to do.
 * A step whose precondition failed is `skipped` (code SKIPPED_EARLIER_FAILURE).
 *
 * The report is safe to hand to a vendor: it holds no PIN, no key material,
 * no token file path contents — names, addresses, versions, thumbprints and
 * certificate fields only (doctor.test.ts checks the JSON for the PIN).
 */
import { createHash, X509Certificate } from 'node:crypto';
import { checkServerIdentity } from 'node:tls';
import { readFileSync } from 'node:fs';
import { certificatesFromPem, certificateToPem } from '../pki/index.js';
import { FacilityCredential } from './facility-credential.js';
import { readPin } from './pin.js';
import { clockStep, httpsDate, plainHttpsDate, type ClockSource } from './doctor-steps/clock.js';
import { dnsStep, tcpStep } from './doctor-steps/network.js';
import { DOCTOR_STEPS, skipped, type DoctorStepId, type StepResult } from './doctor-steps/result.js';
import { chainStep, tlsStep, type TlsEvidence } from './doctor-steps/tls.js';
import { clientCertificateStep, revocationStep, tokenStep } from './doctor-steps/token.js';
import type { DoctorTarget } from './doctor-steps/target.js';

export { DOCTOR_STEPS, type DoctorStepId, type StepResult, type StepStatus, type Bilingual } from './doctor-steps/result.js';
export type { DoctorTarget } from './doctor-steps/target.js';
export { CLOCK_FAIL_MS, CLOCK_WARN_MS } from './doctor-steps/clock.js';

export interface DoctorOptions {
  env?: NodeJS.ProcessEnv;
  /** This machine's clock (injected by tests). */
  now?: () => Date;
  /** Per network operation, default 5000 ms. */
  timeoutMs?: number;
}

export interface DoctorReport {
  format: 'sekisho-doctor';
  version: 1;
  checkedAt: string;
  center: string;
  serverName: string;
  /** ok: no step failed (warnings may be present); problems: at least one failed. */
  outcome: 'ok' | 'problems';
  results: StepResult[];
}

const notConfigured = (step: DoctorStepId): StepResult => ({
  step,
  status: 'skipped',
  code: 'NOT_CONFIGURED',
  message: { ja: 'トークンが指定されていないため、確認していません。', en: 'no token given (--token or credential.token), so not checked' },
});

/** A step that throws (a defect, or something no step foresaw) is a failure of that step, never a crash of the doctor. */
async function guarded<T extends { result: StepResult }>(step: DoctorStepId, fn: () => Promise<T>): Promise<T | { result: StepResult }> {
  try {
    return await fn();
  } catch (e) {
    const why = (e as Error)?.message ?? String(e);
    return {
      result: {
        step,
        status: 'fail',
        code: 'DOCTOR_STEP_ERROR',
        message: { ja: `この手順は予期しないエラーで完了できませんでした（${why}）。`, en: `this step could not complete: ${why}` },
        fix: { ja: 'この結果（--json）を担当ベンダーに送ってください。', en: 'send this result (--json) to your vendor' },
      },
    };
  }
}

export async function runDoctor(t: DoctorTarget, o: DoctorOptions = {}): Promise<DoctorReport> {
  const now = o.now ?? (() => new Date());
  const env = o.env ?? process.env;
  const timeoutMs = o.timeoutMs ?? 5000;
  const results = new Map<DoctorStepId, StepResult>();
  const put = (r: StepResult) => results.set(r.step, r);
  const failed = (s: DoctorStepId) => results.get(s)?.status === 'fail' || results.get(s)?.status === 'skipped';

  // Network: name, TCP, TLS, chain.
  put((await guarded('dns', async () => ({ result: await dnsStep(t) }))).result);
  put(failed('dns') ? skipped('tcp', 'dns') : (await guarded('tcp', async () => ({ result: await tcpStep(t, timeoutMs) }))).result);
  let evidence: TlsEvidence | undefined;
  if (failed('tcp')) {
    put(skipped('tls', 'tcp'));
    put(skipped('chain', 'tcp'));
  } else {
    const r = await guarded('tls', () => tlsStep(t, timeoutMs, now()));
    evidence = 'evidence' in r ? r.evidence : undefined;
    put(r.result);
    put(!evidence?.chain.length && r.result.status === 'fail' ? skipped('chain', 'tls') : (await guarded('chain', async () => ({ result: chainStep(t, evidence ?? { chain: [] }, now()) }))).result);
  }

  // The token, the certificate in it, its revocation.
  let ocspDate: ClockSource | undefined;
  if (!t.token) {
    for (const s of ['token', 'client-certificate', 'revocation'] as const) put(notConfigured(s));
  } else {
    const tk = await guarded('token', () => tokenStep(t, env));
    put(tk.result);
    if (!('open' in tk) || !tk.open) {
      put(skipped('client-certificate', 'token'));
      put(skipped('revocation', 'token'));
    } else {
      try {
        const open = tk.open;
        const cc = await guarded('client-certificate', () => clientCertificateStep(open, now()));
        put(cc.result);
        const credential = 'credential' in cc ? cc.credential : undefined;
        if (!credential || cc.result.code === 'CLIENT_KEY_MISMATCH') put(skipped('revocation', 'client-certificate'));
        else {
          const rv = await guarded('revocation', () => revocationStep(open, credential, t, [...(evidence?.chain ?? []), ...rootCerts(t)], timeoutMs, now()));
          put(rv.result);
          if ('httpDate' in rv && rv.httpDate) ocspDate = { source: 'ocsp-http-date', date: rv.httpDate, at: now() };
        }
      } finally {
        await tk.open.module.close();
      }
    }
  }

  // The clock: the gateway's Date over mutual TLS, else a plain HTTPS answer, else the OCSP responder's.
  let src: ClockSource | undefined;
  if (!failed('tcp') && !t.httpProxy) {
    const certOk = results.get('client-certificate')?.status === 'ok' || results.get('client-certificate')?.status === 'warn';
    // The facility's certificate goes only to a center whose chain passed (the root with the letter's thumbprint), and that
    // connection trusts that root alone: an impostor never sees the certificate nor gets a handshake signed by its key.
    const root = results.get('chain')?.status === 'ok' ? [...(evidence?.chain ?? []), ...rootCerts(t)].find((c) => createHash('sha256').update(c).digest('hex') === t.rootThumbprint) : undefined;
    if (t.token && certOk && root) src = await gatewayDate(t, root, env, now, timeoutMs);
    if (!src) {
      const d = await plainHttpsDate(t, timeoutMs).catch(() => undefined);
      if (d) src = { source: 'https-date', date: d, at: now() };
    }
  }
  src ??= ocspDate;
  put(!src && failed('tcp') ? skipped('clock', 'tcp') : clockStep(src, now));

  const ordered = DOCTOR_STEPS.map((s) => results.get(s)!);
  return {
    format: 'sekisho-doctor',
    version: 1,
    checkedAt: now().toISOString(),
    center: `${t.center.host}:${t.center.port}`,
    serverName: t.serverName,
    outcome: ordered.some((r) => r.status === 'fail') ? 'problems' : 'ok',
    results: ordered,
  };
}

function rootCerts(t: DoctorTarget): Buffer[] {
  if (!t.rootFile) return [];
  try {
    const b = readFileSync(t.rootFile);
    return b.includes('-----BEGIN') ? certificatesFromPem(b.toString('latin1')) : [Buffer.from(new X509Certificate(b).raw)];
  } catch {
    return [];
  }
}

/** The gateway requires the facility's certificate before it answers: one request with it, for the Date header. */
async function gatewayDate(t: DoctorTarget, root: Buffer, env: NodeJS.ProcessEnv, now: () => Date, timeoutMs: number): Promise<ClockSource | undefined> {
  let cred: FacilityCredential | undefined;
  try {
    const pin = await readPin(t.pin ?? { env: 'SEKISHO_PIN' }, { env, isTTY: false });
    cred = await FacilityCredential.open(t.token!, pin, now());
    const secureContext = await cred.secureContext({ ca: [certificateToPem(root)] });
    const date = await httpsDate(t, { secureContext, rejectUnauthorized: true, checkServerIdentity: (_host, cert) => checkServerIdentity(t.serverName, cert) }, timeoutMs);
    return date ? { source: 'gateway-http-date', date, at: now() } : undefined;
  } catch {
    return undefined;
  } finally {
    await cred?.close().catch(() => undefined);
  }
}
