import { performance } from 'node:perf_hooks';
import { internal, notFound } from '../errors/index.js';
import { decodeName, formatName } from '../pki/index.js';
import type { ComplianceProfile } from '../policy/index.js';
import { enumerateTls } from './enumerate.js';
import type { Findings } from './findings.js';
import { fetchHttp, handshake, hstsOf, refusesWithoutCertificate, type ClientCredential, type Target } from './handshake.js';
import { buildReport, type ScanReport } from './report.js';
import { judge } from './verdict.js';

export interface ScanOptions {
  target: Target;
  profile: ComplianceProfile;
  /** A client certificate for servers that require one (lets the full handshake and HSTS probe through). */
  clientCredential?: ClientCredential;
  /** Trust anchors (DER) for the chain check. */
  trustAnchors?: Buffer[];
  timeoutMs?: number;
  /** Bound on the whole scan (every probe is bounded too); default 60 s. */
  deadlineMs?: number;
  now?: () => Date;
}

/**
 * Scans one server: the wire-level enumeration, a full handshake without a
 * client certificate (does the server require one?), one with the given
 * credential, and an HSTS probe, all concurrently; then judges the findings.
 */
export async function scanServer(o: ScanOptions): Promise<ScanReport> {
  const started = performance.now();
  const now = o.now ?? (() => new Date());
  const timeoutMs = o.timeoutMs ?? 3000;
  const deadlineMs = o.deadlineMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(internal('SCAN_DEADLINE', `the scan of ${o.target.host}:${o.target.port} took longer than ${deadlineMs / 1000} s (a very slow or stalling server); try a larger --timeout`)), deadlineMs);
    timer.unref();
  });
  const probes = Promise.all([
    enumerateTls(o.target, { timeoutMs }),
    handshake(o.target, undefined, timeoutMs),
    o.clientCredential ? handshake(o.target, o.clientCredential, timeoutMs) : Promise.resolve(undefined),
    fetchHttp(o.target, o.clientCredential, timeoutMs),
    o.clientCredential ? fetchHttp(o.target, undefined, timeoutMs) : Promise.resolve(undefined),
  ]);
  const [wire, bare, withCredential, http, httpBare] = await Promise.race([probes, deadline]).finally(() => clearTimeout(timer));
  const hsts = http ? hstsOf(http) : undefined;
  const anonymousHttp = o.clientCredential ? httpBare : http;
  // Refused for want of a client certificate: after a CertificateRequest the probes saw (TLS 1.2), or with TLS 1.3's
  // certificate_required alert. Any other failure (no shared suite, a timeout) says nothing about client certificates.
  const refusedInHandshake = !bare.established && (wire.clientAuthFromHello !== undefined || /certificate.required|\b116\b/i.test(bare.error ?? ''));
  const refusedOverHttp = !refusedInHandshake && anonymousHttp !== undefined && refusesWithoutCertificate(anonymousHttp);
  const anySupported = wire.protocols.some((p) => p.supported);
  if (!anySupported && !bare.established && !withCredential?.established && /ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|timed out|ETIMEDOUT/.test(bare.error ?? '')) {
    throw notFound('SCAN_UNREACHABLE', `no TLS server answered at ${o.target.host}:${o.target.port} (${bare.error}); check the address and that the server is running`);
  }
  const full = withCredential?.established ? withCredential : bare;
  const chainSeen = wire.certificateFromHello?.length ? wire.certificateFromHello : full.chain;
  const first = chainSeen.map((c) => c.toString('base64')).join();
  const others = (wire.chainsFromHello ?? [])
    .map((h) => ({ chain: h.chain.map((c) => c.toString('base64')), suite: h.suite }))
    .filter((h, i, all) => h.chain.join() !== first && all.findIndex((x) => x.chain.join() === h.chain.join()) === i);
  const requested = wire.clientAuthFromHello !== undefined || refusedInHandshake;
  const findings: Findings = {
    target: { host: o.target.host, port: o.target.port, ...(o.target.serverName ? { serverName: o.target.serverName } : {}) },
    scannedAt: now().toISOString(),
    durationMs: 0,
    protocols: wire.protocols,
    groups: wire.groups,
    ...(wire.dheBits !== undefined ? { dheBits: wire.dheBits } : {}),
    ...(wire.secureRenegotiation !== undefined ? { secureRenegotiation: wire.secureRenegotiation } : {}),
    ...(wire.compression !== undefined ? { compression: wire.compression } : {}),
    ...(wire.fallbackScsv !== undefined ? { fallbackScsv: wire.fallbackScsv } : {}),
    ...(chainSeen.length ? { certificate: { chain: chainSeen.map((c) => c.toString('base64')), ocspStapled: full.ocspStapled, ...(others.length ? { others } : {}) } } : {}),
    clientAuth: {
      requested,
      required: refusedInHandshake || refusedOverHttp,
      ...(refusedInHandshake ? { enforcedAt: 'handshake' as const } : refusedOverHttp ? { enforcedAt: 'http' as const } : {}),
      caNames: (wire.clientAuthFromHello?.caNames ?? []).map((dn) => {
        try {
          return formatName(decodeName(dn));
        } catch {
          return `#${dn.toString('hex')}`;
        }
      }),
    },
    ...(hsts !== undefined ? { hsts } : {}),
    notes: [...wire.notes, ...(bare.established ? [] : [`handshake without a client certificate: ${bare.error}`]), ...(withCredential && !withCredential.established ? [`handshake with the given client certificate failed: ${withCredential.error}`] : [])],
  };
  findings.durationMs = Math.round(performance.now() - started);
  const hostname = o.target.serverName ?? o.target.host;
  const verdict = judge(findings, o.profile, { hostname, trustAnchors: o.trustAnchors ?? [], now: now() });
  return buildReport(findings, verdict);
}
