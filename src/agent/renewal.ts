/**
 * Renewal before expiry, with no letter and no hand-typed curl session:
 *
 *  1. a new key pair is generated inside the token, beside the current one
 *     (same label, its own CKA_ID);
 *  2. a PKCS#10 request for the current subject is signed by the new key
 *     inside the token (the proof of possession);
 *  3. EST simplereenroll (RFC 7030 §4.2.2) with the current certificate as the
 *     TLS client credential;
 *  4. the new certificate is stored in the token under the new key;
 *  5. new connections switch to it (open ones keep theirs);
 *  6. once the center has accepted the new certificate, the old key and
 *     certificate are removed from the token.
 *
 * A failure before step 5 drops the new key and leaves everything as it was;
 * the next check tries again.
 */
import { request as httpsRequest, type RequestOptions } from 'node:https';
import type { SecureContextOptions } from 'node:tls';
import { isSekishoError, malformed, SekishoError } from '../errors/index.js';
import { certificatesFromPkcs7 } from '../pki/index.js';
import type { AgentStats } from './agent-stats.js';
import type { CenterLink } from './center-link.js';
import { linkError } from './center-link.js';
import type { HostPort } from './config.js';
import type { FacilityCredential } from './facility-credential.js';
import type { AgentLog } from './log.js';
import { agentErrors } from './messages.js';

export interface RenewalOptions {
  credential: FacilityCredential;
  link: CenterLink;
  /** The center's profile and root, for every secure context. */
  base: SecureContextOptions;
  est: URL;
  /** Where the new certificate is tried before the old one is removed (the HTTP gateway). */
  probe: HostPort;
  beforeMs: number;
  checkEveryMs: number;
  log: AgentLog;
  stats: AgentStats;
  now?: () => Date;
}

/** POSTs the CSR to EST simplereenroll over mutual TLS with the current credential; returns the certificates of the answer. */
function simplereenroll(o: RenewalOptions, csr: Buffer): Promise<Buffer[]> {
  const url = new URL('.well-known/est/simplereenroll', o.est.href.endsWith('/') ? o.est.href : `${o.est.href}/`);
  const body = `${csr.toString('base64').replace(/.{64}/g, '$&\n')}\n`;
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method: 'POST',
        agent: false,
        secureContext: o.link.context,
        rejectUnauthorized: true,
        headers: { 'content-type': 'application/pkcs10', 'content-transfer-encoding': 'base64', 'content-length': Buffer.byteLength(body) },
        timeout: 60_000,
      } as RequestOptions,
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => {
          const text = Buffer.concat(parts).toString('utf8');
          if (res.statusCode !== 200) {
            const [first = '', ja] = text.split('\n');
            const m = /^([A-Z][A-Z0-9_]+): (.*)$/.exec(first);
            return reject(new SekishoError('unavailable', m?.[1] ?? 'EST_REFUSED', `EST answered ${res.statusCode}: ${(m?.[2] ?? first).slice(0, 300)}`, ja ? { ja } : {}));
          }
          try {
            resolve(certificatesFromPkcs7(Buffer.from(text.replace(/\s+/g, ''), 'base64')));
          } catch (e) {
            reject(e);
          }
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (e) => reject(linkError(e)));
    req.end(body);
  });
}

export class Renewal {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  readonly #now: () => Date;

  constructor(readonly o: RenewalOptions) {
    this.#now = o.now ?? (() => new Date());
  }

  /** When renewal is due: `renewal.before` ahead of the current certificate's expiry. */
  dueAt(): Date {
    return new Date(this.o.credential.current.certificate!.notAfter.getTime() - this.o.beforeMs);
  }

  start(): void {
    const tick = () => {
      void this.check();
      this.#timer = setTimeout(tick, this.o.checkEveryMs);
      this.#timer.unref();
    };
    this.#timer = setTimeout(tick, 0);
    this.#timer.unref();
  }

  /** Renews when due; one renewal at a time. */
  check(): Promise<void> {
    if (this.#now() < this.dueAt()) return Promise.resolve();
    return this.renew();
  }

  renew(): Promise<void> {
    this.#running ??= this.#renew().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #renew(): Promise<void> {
    const { credential, link, log, stats } = this.o;
    const before = credential.view();
    log('info', 'renewing the facility certificate', { serial: before.serial, notAfter: before.notAfter });
    let successor: Buffer | undefined;
    let switched = false;
    try {
      const next = await credential.prepareSuccessor();
      successor = next.id;
      const certs = await simplereenroll(this.o, next.csr);
      const leaf = certs[0];
      if (!leaf) throw malformed('EST_ANSWER_EMPTY', 'EST answered without a certificate');
      const c = await credential.storeSuccessor(leaf);
      const context = await credential.secureContext(this.o.base, c);
      const old = credential.use(c);
      link.switchTo(context);
      switched = true;
      const view = credential.view(c);
      stats.renewalsTotal++;
      stats.lastRenewal = { at: this.#now().toISOString(), serial: view.serial, notAfter: view.notAfter };
      log('info', 'new connections use the renewed certificate', { serial: view.serial, notAfter: view.notAfter, previous: before.serial });
      await link.probe(this.o.probe, context);
      await credential.remove(old);
      log('info', 'the renewed certificate works; the old key and certificate were removed from the token', { serial: view.serial, removed: before.serial });
    } catch (e) {
      stats.renewalFailuresTotal++;
      const err = isSekishoError(e) ? e : agentErrors.renewalFailed((e as Error).message, e);
      stats.lastRenewalError = { at: this.#now().toISOString(), code: err.code, message: err.message, ...(err.ja ? { ja: err.ja } : {}) };
      if (!switched && successor) await credential.discard(successor);
      log('error', switched ? 'the renewed certificate was not accepted yet; the old key stays in the token' : 'renewal failed; the current certificate stays in use', { code: err.code, message: err.message, ja: err.ja });
    }
  }

  /** Waits for a renewal in progress. */
  async settled(): Promise<void> {
    await this.#running;
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
  }
}
