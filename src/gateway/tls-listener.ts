import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { X509Certificate as CryptoX509 } from 'node:crypto';
import type { Verdict } from './client-verifier.js';
import { GuardedListener, peekFirstRecord, refuseRenegotiation, type LimitLog, type ListenerLedger, type ListenerLimits } from '../listener/index.js';
import { reasonOfTlsError, type RefusalReason } from './refusal.js';

/**
 * The TLS front of one listener. Each accepted socket becomes a server-side
 * TLSSocket that requires a certificate (a client without one is refused in
 * the handshake with an alert: handshake_failure in TLS 1.2,
 * certificate_required in TLS 1.3). OpenSSL's own chain verdict is not used:
 * once the handshake is done the verifier decides, with its own reasons.
 * The TCP front (listener/) admits a socket only under the listener's
 * connection caps, before any TLS work; a handshake must finish within the
 * handshake timeout; a renegotiation request closes the connection.
 */
export interface HandshakeOutcome {
  socket: TLSSocket;
  verdict: Verdict;
  /** Seconds from accept to decision. */
  seconds: number;
  /** The first record the client sent (its ClientHello), when `peekHello` is on. */
  hello?: Buffer;
  /** The context the handshake ran under: the caller tells a handshake that began before a policy switch (and negotiated under the old profile) from one that began after. */
  context: SecureContext;
}

export interface TlsListenerOptions {
  name: string;
  host: string;
  port: number;
  context: () => SecureContext;
  verify: (leaf: CryptoX509, presented: () => CryptoX509[]) => Verdict;
  alpn?: string[];
  limits: ListenerLimits;
  ledger: ListenerLedger;
  log: LimitLog;
  onHandshake: (o: HandshakeOutcome) => void;
  onRefusedInHandshake: (reason: RefusalReason, detail: string, remote: { address: string; port: number }, seconds: number, hello: Buffer | undefined) => void;
  /**
   * Hold each socket until its first record (the ClientHello) is in and hand
   * those bytes along with the outcome (listener/hello-peek.ts): observation
   * records what refused clients offered. Only that record is held.
   */
  peekHello?: boolean;
  /** Accept on a socket of this process's own (SO_REUSEPORT), as a `--workers` process does (listener/guarded-listener.ts). */
  reusePort?: boolean;
}

export class TlsListener {
  readonly front: GuardedListener;
  readonly #onRenegotiation = () => this.front.counts.renegotiationsRefused++;

  constructor(private readonly o: TlsListenerOptions) {
    this.front = new GuardedListener({
      name: o.name,
      host: o.host,
      port: o.port,
      limits: o.limits,
      ledger: o.ledger,
      log: o.log,
      setting: 'listen address (--listen or listeners[].listen)',
      // A client that half-closes after its request still gets the answer.
      allowHalfOpen: true,
      ...(o.reusePort ? { reusePort: true } : {}),
      onConnection: (raw) => this.#accept(raw),
    });
  }

  listen(): Promise<{ host: string; port: number }> {
    return this.front.listen();
  }

  #accept(raw: Socket): void {
    const started = performance.now();
    const remote = { address: raw.remoteAddress ?? '', port: raw.remotePort ?? 0 };
    const c: Attempt = { decided: false, started, remote, raw, hello: undefined, socket: undefined, timer: undefined };
    c.timer = setTimeout(() => {
      if (c.decided) return;
      this.front.counts.handshakeTimeouts++;
      this.#refuse(c, 'HANDSHAKE_TIMEOUT', `no completed handshake within ${this.o.limits.handshakeTimeoutMs} ms`);
    }, this.o.limits.handshakeTimeoutMs);
    if (!this.o.peekHello) return this.#handshake(c);
    peekFirstRecord(raw, (bytes) => {
      if (c.decided) return;
      if (!bytes) return this.#refuse(c, 'HANDSHAKE_FAILED', 'the client closed the connection before the handshake completed');
      c.hello = bytes;
      this.#handshake(c);
    });
  }

  #refuse(c: Attempt, reason: RefusalReason, detail: string): void {
    if (c.decided) return;
    c.decided = true;
    clearTimeout(c.timer);
    this.o.onRefusedInHandshake(reason, detail, c.remote, (performance.now() - c.started) / 1000, c.hello);
    (c.socket ?? c.raw).destroy();
  }

  #handshake(c: Attempt): void {
    const context = this.o.context();
    const socket = new TLSSocket(c.raw, {
      isServer: true,
      secureContext: context,
      requestCert: true,
      rejectUnauthorized: true,
      ...(this.o.alpn ? { ALPNProtocols: this.o.alpn } : {}),
    });
    c.socket = socket;
    refuseRenegotiation(socket, this.#onRenegotiation);
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if (c.decided) return;
      const message = e.message.split('\n')[0] ?? '';
      this.#refuse(c, reasonOfTlsError(e.code, message), message.replace(/^[0-9A-F]+:error:/, ''));
    });
    // Half-open is for after the handshake: a client that stops sending before it completes never will.
    socket.once('end', () => this.#refuse(c, 'HANDSHAKE_FAILED', 'the client closed the connection before the handshake completed'));
    socket.once('secure', () => {
      if (c.decided) return;
      c.decided = true;
      clearTimeout(c.timer);
      const leaf = socket.getPeerX509Certificate();
      let verdict: Verdict;
      if (!leaf) verdict = { ok: false, reason: 'NO_CLIENT_CERT', detail: 'no client certificate' };
      else verdict = this.o.verify(leaf, () => presentedChain(socket));
      this.o.onHandshake({ socket, verdict, seconds: (performance.now() - c.started) / 1000, context, ...(c.hello ? { hello: c.hello } : {}) });
      // The socket's listeners keep `c` for the connection's life: the hello (up to 16 KiB) is not kept with it.
      c.hello = undefined;
    });
  }

  /** Stops accepting; existing connections stay. */
  stop(): Promise<void> {
    return this.front.stop();
  }

  destroyAll(): void {
    this.front.destroyAll();
  }
}

/** One connection from accept to decision. */
interface Attempt {
  decided: boolean;
  started: number;
  remote: { address: string; port: number };
  raw: Socket;
  hello: Buffer | undefined;
  socket: TLSSocket | undefined;
  timer: NodeJS.Timeout | undefined;
}

/** The certificates the client sent above its own (intermediates), from OpenSSL's view of the peer chain. */
export function presentedChain(socket: TLSSocket): CryptoX509[] {
  const out: CryptoX509[] = [];
  const seen = new Set<string>();
  let c = socket.getPeerCertificate(true);
  while (c && c.raw && !seen.has(c.fingerprint256)) {
    seen.add(c.fingerprint256);
    if (out.length || seen.size > 1) out.push(new CryptoX509(c.raw));
    const next = c.issuerCertificate;
    if (!next || next === c) break;
    c = next;
  }
  return out;
}
