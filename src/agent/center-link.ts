/**
 * The agent's way out to the center: the secure context of the current
 * credential, swapped whole when a renewed certificate takes over. A
 * connection keeps the context it was opened with, so open connections carry
 * on with the old certificate while new ones use the new one.
 */
import { Agent as HttpsAgent, request as httpsRequest, type RequestOptions } from 'node:https';
import { connect as tlsConnect, type ConnectionOptions, type SecureContext, type TLSSocket } from 'node:tls';
import type { HostPort } from './config.js';
import { agentErrors } from './messages.js';

const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** A failure to reach the center as the agent's error: untrusted server, or unreachable. */
export function linkError(e: unknown) {
  const code = (e as NodeJS.ErrnoException | undefined)?.code ?? '';
  if (UNTRUSTED.has(code)) return agentErrors.centerUntrusted(code);
  return agentErrors.centerUnreachable(code || (e as Error | undefined)?.message || 'error');
}

export class CenterLink {
  #context: SecureContext;
  #agent: HttpsAgent;
  generation = 1;

  /** `verify`: servername / checkServerIdentity from centerTlsOptions (the context carries the profile and the root). */
  constructor(
    context: SecureContext,
    readonly verify: Pick<ConnectionOptions, 'servername' | 'checkServerIdentity'>,
  ) {
    this.#context = context;
    this.#agent = this.#newAgent();
  }

  #newAgent(): HttpsAgent {
    return new HttpsAgent({ keepAlive: true, secureContext: this.#context, rejectUnauthorized: true, ...this.verify });
  }

  /** New connections use `context` from now on; open ones are left as they are. */
  switchTo(context: SecureContext): void {
    const old = this.#agent;
    this.#context = context;
    this.#agent = this.#newAgent();
    this.generation++;
    // Idle kept-alive connections of the old credential are not reused; busy ones finish their requests.
    setImmediate(() => {
      for (const list of Object.values(old.freeSockets)) for (const s of list ?? []) s.destroy();
    });
  }

  get context(): SecureContext {
    return this.#context;
  }

  /** The pool HTTP requests to the center go through. */
  get httpsAgent(): HttpsAgent {
    return this.#agent;
  }

  /** A TLS connection to `to` with the current credential. */
  connect(to: HostPort, context: SecureContext = this.#context): TLSSocket {
    return tlsConnect({ host: to.host, port: to.port, secureContext: context, rejectUnauthorized: true, ...this.verify });
  }

  /**
   * Resolves once the center has accepted `context`'s certificate: a HEAD
   * request over a fresh connection answered without a refusal (under TLS 1.3
   * the client's handshake ends before the server has judged its
   * certificate, so a handshake alone proves nothing).
   */
  probe(to: HostPort, context: SecureContext, timeoutMs = 15_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const options = { host: to.host, port: to.port, method: 'HEAD', path: '/', agent: false, secureContext: context, rejectUnauthorized: true, ...this.verify, headers: { 'user-agent': 'sekisho-agent (renewal check)' }, timeout: timeoutMs };
      const req = httpsRequest(options as RequestOptions, (res) => {
        res.resume();
        const refusal = res.headers['x-sekisho-refusal'];
        if (typeof refusal === 'string') reject(Object.assign(agentErrors.renewalFailed(`the center refused the new certificate (${refusal})`), { refusal }));
        else resolve();
      });
      req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
      req.on('error', (e) => reject(linkError(e)));
      req.end();
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}
