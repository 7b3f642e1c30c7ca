import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { X509Certificate as CryptoX509 } from 'node:crypto';
import type { Verdict } from './client-verifier.js';
import { listenFailure } from '../errors/index.js';
import { reasonOfTlsError, type RefusalReason } from './refusal.js';

/**
 * The TLS front of one listener. Each accepted socket becomes a server-side
 * TLSSocket that requires a certificate (a client without one is refused in
 * the handshake with an alert: handshake_failure in TLS 1.2,
 * certificate_required in TLS 1.3). OpenSSL's own chain verdict is not used:
 * once the handshake is done the verifier decides, with its own reasons.
 */
export interface HandshakeOutcome {
  socket: TLSSocket;
  verdict: Verdict;
  /** Seconds from accept to decision. */
  seconds: number;
}

export interface TlsListenerOptions {
  host: string;
  port: number;
  context: () => SecureContext;
  verify: (leaf: CryptoX509, presented: () => CryptoX509[]) => Verdict;
  alpn?: string[];
  handshakeTimeoutMs: number;
  onHandshake: (o: HandshakeOutcome) => void;
  onRefusedInHandshake: (reason: RefusalReason, detail: string, remote: { address: string; port: number }, seconds: number) => void;
}

export class TlsListener {
  readonly server: Server;
  readonly #raw = new Set<Socket>();

  constructor(private readonly o: TlsListenerOptions) {
    // allowHalfOpen: a client may send its request and then close its side
    // (TLS 1.3 close_notify, TCP FIN) and still read the answer; the TLS
    // socket takes the setting from the raw socket, and whoever answers ends it.
    this.server = createNetServer({ noDelay: true, allowHalfOpen: true }, (raw) => this.#accept(raw));
  }

  listen(): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', (e) => reject(listenFailure(e, `${this.o.host}:${this.o.port}`, 'listen address (--listen or listeners[].listen)')));
      this.server.listen(this.o.port, this.o.host, () => {
        this.server.removeAllListeners('error');
        const a = this.server.address() as { address: string; port: number };
        resolve({ host: a.address, port: a.port });
      });
    });
  }

  #accept(raw: Socket): void {
    const started = performance.now();
    const remote = { address: raw.remoteAddress ?? '', port: raw.remotePort ?? 0 };
    this.#raw.add(raw);
    raw.once('close', () => this.#raw.delete(raw));
    let decided = false;
    const socket = new TLSSocket(raw, {
      isServer: true,
      secureContext: this.o.context(),
      requestCert: true,
      rejectUnauthorized: true,
      ...(this.o.alpn ? { ALPNProtocols: this.o.alpn } : {}),
    });
    const timer = setTimeout(() => {
      if (decided) return;
      decided = true;
      this.o.onRefusedInHandshake('HANDSHAKE_TIMEOUT', `no completed handshake within ${this.o.handshakeTimeoutMs} ms`, remote, (performance.now() - started) / 1000);
      socket.destroy();
    }, this.o.handshakeTimeoutMs);
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if (decided) return;
      decided = true;
      clearTimeout(timer);
      const message = e.message.split('\n')[0] ?? '';
      this.o.onRefusedInHandshake(reasonOfTlsError(e.code, message), message.replace(/^[0-9A-F]+:error:/, ''), remote, (performance.now() - started) / 1000);
      socket.destroy();
    });
    // Half-open is for after the handshake: a client that stops sending before it completes never will.
    socket.once('end', () => {
      if (decided) return;
      decided = true;
      clearTimeout(timer);
      this.o.onRefusedInHandshake('HANDSHAKE_FAILED', 'the client closed the connection before the handshake completed', remote, (performance.now() - started) / 1000);
      socket.destroy();
    });
    socket.once('secure', () => {
      if (decided) return;
      decided = true;
      clearTimeout(timer);
      const leaf = socket.getPeerX509Certificate();
      let verdict: Verdict;
      if (!leaf) verdict = { ok: false, reason: 'NO_CLIENT_CERT', detail: 'no client certificate' };
      else verdict = this.o.verify(leaf, () => presentedChain(socket));
      this.o.onHandshake({ socket, verdict, seconds: (performance.now() - started) / 1000 });
    });
  }

  /** Stops accepting; existing connections stay. */
  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  destroyAll(): void {
    for (const s of this.#raw) s.destroy();
  }
}

/** The certificates the client sent above its own (intermediates), from OpenSSL's view of the peer chain. */
function presentedChain(socket: TLSSocket): CryptoX509[] {
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
