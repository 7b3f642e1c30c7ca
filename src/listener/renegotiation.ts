import type { TLSSocket } from 'node:tls';

/** The TLS wrap's hook that OpenSSL's info callback calls at each handshake start. */
interface HandshakeHooks {
  onhandshakestart?: (this: unknown, now: number) => void;
}

/**
 * Closes the connection at the first client-initiated renegotiation (TLS 1.2
 * and older; TLS 1.3 has none). The secure context already refuses it
 * (SSL_OP_NO_RENEGOTIATION, policy/tls-server-options.ts), so no handshake
 * work is done; this also ends the connection, so a client that keeps
 * asking costs nothing more. Node's own limit (3 per 10 minutes) reaches only
 * the sockets a tls.Server wraps itself and, even there, allows 3.
 * `handshakeDone`: the first handshake already happened (a socket handed
 * over after 'secureConnection').
 */
export function refuseRenegotiation(socket: TLSSocket, onRefused: () => void, handshakeDone = false): void {
  const handle = (socket as unknown as { _handle?: HandshakeHooks | null })._handle;
  if (!handle || typeof handle.onhandshakestart !== 'function') return;
  const original = handle.onhandshakestart;
  let started = handshakeDone;
  handle.onhandshakestart = function (this: unknown, now: number) {
    if (started && socket.getProtocol() !== 'TLSv1.3') {
      onRefused();
      socket.destroy();
      return;
    }
    started = true;
    original.call(this, now);
  };
}
