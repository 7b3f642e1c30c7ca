/**
 * What a scan observed about one TLS server, before any judgement. The
 * enumeration (wire-level probes and a full handshake) fills it; checks read
 * it together with a policy profile and return verdicts. Plain data, so it can
 * be stored in a report and judged again later against another profile.
 */
export const PROTOCOLS = ['SSLv3', 'TLSv1.0', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const;
export type ProtocolName = (typeof PROTOCOLS)[number];

export interface ProtocolFindings {
  protocol: ProtocolName;
  /** The server completed a ServerHello for this version. */
  supported: boolean;
  /** IANA names of every suite the server accepted with this version (server order when it enforces one). */
  suites: string[];
  /** True when the server picks by its own preference, false when it follows the client's order, absent when fewer than two suites were accepted. */
  serverOrder?: boolean;
}

export interface CertificateFindings {
  /** DER certificates as the server sent them, leaf first. */
  chain: string[]; // base64 DER, so the findings stay JSON
  /** The server stapled an OCSP response (status_request). */
  ocspStapled: boolean;
  /** Further chains the server sent with other suites (one per key: RSA and ECDSA), each judged like the first. */
  others?: { chain: string[]; suite: string }[];
}

export interface ClientAuthFindings {
  /** The server sent a CertificateRequest. */
  requested: boolean;
  /** A client without a certificate was refused: in the TLS handshake, or (nginx's default) with an HTTP error right after it. */
  required: boolean;
  /** Where the refusal happened, when required. */
  enforcedAt?: 'handshake' | 'http';
  /** Distinguished names of acceptable CAs the server listed (RFC 4514-ish strings). */
  caNames: string[];
}

export interface Findings {
  target: { host: string; port: number; serverName?: string };
  scannedAt: string;
  durationMs: number;
  protocols: ProtocolFindings[];
  /** Named groups (IANA names: x25519, secp256r1, …, ffdhe2048) the server accepted for key exchange. */
  groups: string[];
  /** Size in bits of the finite-field DH group of DHE suites, when any was accepted. */
  dheBits?: number;
  /** RFC 5746 renegotiation_info in the ServerHello. */
  secureRenegotiation?: boolean;
  /** The server accepted TLS compression (CRIME). */
  compression?: boolean;
  /** RFC 7507: 'supported' when a downgraded hello with TLS_FALLBACK_SCSV got inappropriate_fallback. */
  fallbackScsv?: 'supported' | 'not-supported' | 'not-applicable';
  certificate?: CertificateFindings;
  clientAuth?: ClientAuthFindings;
  /** For HTTPS: the Strict-Transport-Security header, or null when absent; undefined when not HTTP or not reachable. */
  hsts?: { header: string | null; maxAge?: number };
  /** Probes that could not be completed (timeouts, resets), in words. */
  notes: string[];
}
