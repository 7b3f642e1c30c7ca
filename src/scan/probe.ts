/**
 * One byte-level TLS probe: connect, send a ClientHello, read the server's
 * flight up to ServerHelloDone (TLS ≤ 1.2) or the ServerHello (TLS 1.3),
 * hang up. Never completes a handshake: a ServerHello choosing a suite is the
 * evidence the enumeration needs.
 *
 * Every probe is bounded in time (`timeoutMs`, default 3 s, for connect and
 * read together) and in bytes (`maxBytes`). It resolves, never rejects:
 * network failures and malformed answers come back as `kind: 'error'`.
 */
import { connect } from 'node:net';
import { isSekishoError } from '../errors/index.js';
import { buildClientHello, type ClientHelloOptions } from './wire/client-hello.js';
import { alertName, type Alert } from './wire/records.js';
import {
  ServerFlight,
  type CertificateMessage,
  type CertificateRequest,
  type CertificateStatus,
  type ServerHello,
  type ServerKeyExchange,
} from './wire/server-messages.js';

export interface ProbeTarget {
  host: string;
  port: number;
}

export interface ProbeOptions {
  /** Whole-probe deadline in milliseconds (connect + read), default 3000. */
  timeoutMs?: number;
  /** Bytes read before the answer counts as malformed, default 1 MiB. */
  maxBytes?: number;
}

export interface ProbeHello {
  kind: 'hello';
  serverHello: ServerHello;
  certificate?: CertificateMessage;
  certificateStatus?: CertificateStatus;
  serverKeyExchange?: ServerKeyExchange;
  certificateRequest?: CertificateRequest;
  /** ServerHelloDone arrived (TLS ≤ 1.2). */
  serverHelloDone: boolean;
  /** Warning alerts the server sent on the way. */
  warnings: Alert[];
  /** Set when the flight stopped after the ServerHello but before ServerHelloDone (TLS ≤ 1.2). */
  incomplete?: { reason: 'alert' | 'closed' | 'timeout' | 'malformed' | 'error'; detail?: string };
}

export type ProbeResult =
  | ProbeHello
  | { kind: 'alert'; level: number; description: number; name: string }
  | { kind: 'closed' }
  | { kind: 'timeout' }
  | { kind: 'error'; message: string; code?: string };

function helloOf(flight: ServerFlight, incomplete?: ProbeHello['incomplete']): ProbeHello | undefined {
  const r = flight.result;
  if (!r.serverHello) return undefined;
  const tls13 = r.serverHello.helloRetryRequest || r.serverHello.version >= 0x0304;
  return {
    kind: 'hello',
    serverHello: r.serverHello,
    ...(r.certificate ? { certificate: r.certificate } : {}),
    ...(r.certificateStatus ? { certificateStatus: r.certificateStatus } : {}),
    ...(r.serverKeyExchange ? { serverKeyExchange: r.serverKeyExchange } : {}),
    ...(r.certificateRequest ? { certificateRequest: r.certificateRequest } : {}),
    serverHelloDone: r.serverHelloDone,
    warnings: r.warnings,
    ...(incomplete && !tls13 && !r.serverHelloDone ? { incomplete } : {}),
  };
}

/**
 * Sends `hello` (a built ClientHello, or the options to build one) to
 * `target` and returns what the server answered.
 */
export function probe(target: ProbeTarget, hello: Buffer | ClientHelloOptions, options: ProbeOptions = {}): Promise<ProbeResult> {
  let bytes: Buffer;
  try {
    bytes = Buffer.isBuffer(hello) ? hello : buildClientHello(hello);
  } catch (e) {
    return Promise.resolve({ kind: 'error', message: e instanceof Error ? e.message : String(e), ...(isSekishoError(e) ? { code: e.code } : {}) });
  }
  const timeoutMs = options.timeoutMs ?? 3000;
  const flight = new ServerFlight({ maxBytes: options.maxBytes ?? 1 << 20 });

  return new Promise<ProbeResult>((resolve) => {
    let settled = false;
    const socket = connect({ host: target.host, port: target.port });
    const finish = (result: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish(helloOf(flight, { reason: 'timeout' }) ?? { kind: 'timeout' }), timeoutMs);
    socket.setNoDelay(true);
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (chunk: Buffer) => {
      if (settled) return;
      try {
        if (!flight.push(chunk)) return;
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        const code = isSekishoError(e) ? e.code : 'TLS_PARSE_FAILED';
        finish(helloOf(flight, { reason: 'malformed', detail: message }) ?? { kind: 'error', message, code });
        return;
      }
      const r = flight.result;
      if (r.serverHello) {
        finish(helloOf(flight, r.alert ? { reason: 'alert', detail: alertName(r.alert.description) } : undefined)!);
      } else if (r.alert) {
        finish({ kind: 'alert', level: r.alert.level, description: r.alert.description, name: alertName(r.alert.description) });
      }
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      finish(helloOf(flight, { reason: 'error', detail: e.code ?? e.message }) ?? { kind: 'error', message: e.message, ...(e.code ? { code: e.code } : {}) });
    });
    socket.on('close', () => {
      const last = flight.result.warnings.at(-1);
      finish(
        helloOf(flight, { reason: 'closed' }) ??
          (last ? { kind: 'alert', level: last.level, description: last.description, name: alertName(last.description) } : { kind: 'closed' }),
      );
    });
  });
}
