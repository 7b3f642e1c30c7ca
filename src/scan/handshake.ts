import { connect, type ConnectionOptions, type DetailedPeerCertificate, type TLSSocket } from 'node:tls';
import { isIP } from 'node:net';

export interface Target {
  host: string;
  port: number;
  serverName?: string;
}

export interface ClientCredential {
  cert: Buffer | string;
  key: Buffer | string;
}

export interface HandshakeOutcome {
  /** The handshake completed (and was not refused right after, as TLS 1.3 servers do for a missing client certificate). */
  established: boolean;
  protocol?: string;
  chain: Buffer[];
  ocspStapled: boolean;
  /** The TLS alert or error that ended it, in words. */
  error?: string;
}

/** A client as permissive as Node allows, so weak servers can still be observed (never used to send data that matters). */
function options(t: Target, credential: ClientCredential | undefined, timeoutMs: number): ConnectionOptions {
  // requestOCSP is a documented tls.connect option missing from @types/node's ConnectionOptions.
  return {
    host: t.host,
    port: t.port,
    ...(t.serverName || !isIP(t.host) ? { servername: t.serverName ?? t.host } : {}),
    rejectUnauthorized: false,
    requestOCSP: true,
    minVersion: 'TLSv1',
    // Every TLS 1.3 suite named (OpenSSL offers the CCM ones only when named), then every TLS 1.2 one.
    ciphers: 'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256:ALL:@SECLEVEL=0',
    timeout: timeoutMs,
    ...(credential ? { cert: credential.cert, key: credential.key } : {}),
  } as ConnectionOptions;
}

/** OpenSSL's error strings, shortened to what a person needs: the alert and its number. */
export function describeTlsError(e: Error & { code?: string }): string {
  const alert = /(?:tlsv1\d?|sslv3|ssl\/tls) alert ([a-z ]+?)(?::|$)[\s\S]*?SSL alert number (\d+)/i.exec(e.message);
  if (alert) return `TLS alert ${alert[1]!.trim()} (${alert[2]})`;
  const reason = /:([a-z0-9 _]+):[^:]*:\d+:?[^:]*$/i.exec(e.message);
  return e.code && /^E[A-Z]+$/.test(e.code) ? `${e.code} ${e.message.replace(/^.*?: /, '')}` : reason ? reason[1]!.trim() : e.message;
}

/** The certificates a peer presented, leaf first, DER (each once). */
export function peerChain(socket: TLSSocket): Buffer[] {
  const out: Buffer[] = [];
  let c: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true) as DetailedPeerCertificate;
  const seen = new Set<string>();
  while (c && c.raw && !seen.has(c.fingerprint256)) {
    seen.add(c.fingerprint256);
    out.push(Buffer.from(c.raw));
    c = c.issuerCertificate && c.issuerCertificate !== c ? c.issuerCertificate : undefined;
  }
  return out;
}

/**
 * One full handshake. After it completes, waits `settleMs` for the server to
 * refuse (a TLS 1.3 server sends certificate_required only after the client's
 * Finished). Bounded in time; never throws.
 */
export function handshake(t: Target, credential?: ClientCredential, timeoutMs = 3000, settleMs = 400): Promise<HandshakeOutcome> {
  return new Promise((resolve) => {
    let ocspStapled = false;
    let chain: Buffer[] = [];
    let protocol: string | undefined;
    let established = false;
    let done = false;
    const finish = (o: Partial<HandshakeOutcome>) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ established, chain, ocspStapled, ...(protocol ? { protocol } : {}), ...o });
    };
    const socket = connect(options(t, credential, timeoutMs));
    const timer = setTimeout(() => finish(established ? {} : { error: 'timed out' }), timeoutMs + settleMs);
    socket.on('OCSPResponse', (r: Buffer | null) => (ocspStapled = Boolean(r && r.length > 0)));
    socket.on('secureConnect', () => {
      chain = peerChain(socket);
      protocol = socket.getProtocol() ?? undefined;
      established = true;
      setTimeout(() => finish({}), settleMs);
    });
    socket.on('data', () => undefined);
    socket.on('error', (e: Error) => {
      established = false;
      finish({ error: describeTlsError(e) });
    });
    socket.on('close', () => {
      if (!done && established) {
        established = false;
        finish({ error: 'closed by the server right after the handshake' });
      } else finish({ error: 'closed by the server' });
    });
  });
}

/** Whether the server refuses a client that has no certificate. */
export async function clientCertificateRequired(t: Target, timeoutMs = 3000): Promise<{ required: boolean; evidence: string }> {
  const o = await handshake(t, undefined, timeoutMs);
  if (o.established) return { required: false, evidence: `a handshake without a client certificate succeeded (${o.protocol})` };
  return { required: true, evidence: o.error ?? 'refused' };
}

export interface HttpAnswer {
  status: number;
  headers: string;
  body: string;
}

/** GET / over TLS; undefined when the server does not answer HTTP (or not within the timeout). */
export function fetchHttp(t: Target, credential?: ClientCredential, timeoutMs = 3000): Promise<HttpAnswer | undefined> {
  return new Promise((resolve) => {
    const socket = connect(options(t, credential, timeoutMs));
    let data = '';
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(data);
      if (!m) return resolve(undefined);
      const [headers = '', body = ''] = data.split('\r\n\r\n');
      resolve({ status: Number(m[1]), headers, body: body.slice(0, 2048) });
    };
    const timer = setTimeout(finish, timeoutMs);
    socket.on('secureConnect', () => socket.write(`GET / HTTP/1.1\r\nHost: ${t.serverName ?? t.host}\r\nConnection: close\r\nUser-Agent: sekisho-scan\r\n\r\n`));
    socket.on('data', (d: Buffer) => {
      data += d.toString('latin1');
      if (data.length > 65536) finish();
    });
    socket.on('end', finish);
    socket.on('close', finish);
    socket.on('error', finish);
  });
}

/** The Strict-Transport-Security header of an HTTP answer. */
export function hstsOf(answer: HttpAnswer): { header: string | null; maxAge?: number } {
  const m = /^strict-transport-security:\s*(.+?)\r?$/im.exec(answer.headers);
  if (!m) return { header: null };
  const age = /max-age\s*=\s*"?(\d+)/i.exec(m[1]!);
  return { header: m[1]!.trim(), ...(age ? { maxAge: Number(age[1]) } : {}) };
}

/**
 * Servers that finish the handshake without a client certificate and refuse
 * at the HTTP layer instead (nginx's ssl_verify_client on: "400 No required
 * SSL certificate was sent").
 */
export function refusesWithoutCertificate(answer: HttpAnswer): boolean {
  return [400, 403, 495, 496].includes(answer.status) && /certificate/i.test(answer.body + answer.headers);
}
