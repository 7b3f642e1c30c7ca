/**
 * Byte-level enumeration of what a TLS server accepts, for the compliance
 * scanner: per protocol version the accepted suites (and whether the server
 * imposes its own order), the named groups, the DHE size, secure
 * renegotiation, compression and TLS_FALLBACK_SCSV. Everything comes from
 * ServerHellos to hand-built ClientHellos (see `probe.ts`), so suites and
 * versions Node's TLS refuses are still detected.
 *
 * Method (the usual one): offer every candidate suite of a version, remove
 * the one the server picks, repeat until it refuses. Candidate lists longer
 * than `maxSuitesPerHello` are cut into chunks that are enumerated
 * independently (and concurrently). When the server imposes its order, the
 * per-chunk orders are merged by offering the chunks' heads together.
 * Probes run concurrently, at most `concurrency` at a time, each bounded by
 * `timeoutMs`.
 *
 * What the bytes cannot show is left to the full handshake (Node TLS): the
 * TLS 1.3 certificate and CertificateRequest are encrypted, and whether a
 * client certificate is *required* needs a finished handshake.
 */
import { CIPHER_SUITES, suiteByCode, suiteName, type CipherSuite } from '../policy/cipher-suites.js';
import { PROTOCOLS, type Findings, type ProtocolFindings, type ProtocolName } from './findings.js';
import { probe, type ProbeHello, type ProbeResult } from './probe.js';
import { DEFAULT_GROUPS_TLS13, NAMED_GROUPS, TLS_VERSION, groupName, type ClientHelloOptions } from './wire/client-hello.js';
import { ALERT } from './wire/records.js';

export interface EnumerateTarget {
  host: string;
  port: number;
  /** SNI name; defaults to `host` unless it is an IP address. */
  serverName?: string;
}

export interface EnumerateOptions {
  /** Deadline of each probe in milliseconds (default 3000). */
  timeoutMs?: number;
  /** Probes in flight at once (default 8). */
  concurrency?: number;
  /** Suites offered in one ClientHello at most (default 128; some servers choke on long lists). */
  maxSuitesPerHello?: number;
  /** Versions to test (default all five). */
  protocols?: readonly ProtocolName[];
}

/** A certificate chain seen in a TLS ≤ 1.2 flight (TLS 1.3 sends it encrypted). */
export interface HelloChain {
  /** DER certificates, leaf first. */
  chain: Buffer[];
  /** A CertificateStatus (stapled OCSP response) came with it. */
  ocspStapled: boolean;
  protocol: ProtocolName;
  /** IANA name of the suite the chain came with (servers with RSA and ECDSA keys send different chains). */
  suite: string;
}

/** A TLS ≤ 1.2 CertificateRequest as seen on the wire; whether a certificate is *required* needs a full handshake. */
export interface HelloClientAuth {
  /** DER DistinguishedNames of the acceptable CAs (decode with pki `decodeName`). */
  caNames: Buffer[];
  /** ClientCertificateType values (1 rsa_sign, 64 ecdsa_sign, …). */
  certificateTypes: number[];
  /** TLS 1.2 signature schemes the server accepts from the client. */
  signatureAlgorithms?: number[];
  /** The version of the flight the request was read from. */
  protocol: ProtocolName;
}

export interface WireFindings extends Omit<Findings, 'certificate' | 'clientAuth' | 'hsts'> {
  /** DER chain (leaf first) from the highest TLS ≤ 1.2 version that sent one; absent for TLS 1.3-only servers. */
  certificateFromHello?: Buffer[];
  /** Every distinct chain seen (by leaf), highest version first, with stapling and the suite it came with. */
  chainsFromHello?: HelloChain[];
  /** Present when a TLS ≤ 1.2 flight carried a CertificateRequest. */
  clientAuthFromHello?: HelloClientAuth;
  /** True when TLS ≤ 1.2 flights were seen, so an absent `clientAuthFromHello` means "not requested" rather than "not visible". */
  clientAuthVisible: boolean;
  /** How many probes the enumeration sent. */
  probes: number;
}

// ---------------------------------------------------------------------------

function limiter(n: number) {
  let active = 0;
  const queue: (() => void)[] = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (active < n) active++;
    else await new Promise<void>((res) => queue.push(res)); // the releaser hands its slot over
    try {
      return await fn();
    } finally {
      const next = queue.shift();
      if (next) next();
      else active--;
    }
  };
}

function chunk<T>(items: readonly T[], max: number): T[][] {
  if (items.length === 0) return [];
  const n = Math.ceil(items.length / max);
  const size = Math.ceil(items.length / n);
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

const OFFERABLE = CIPHER_SUITES.filter((s) => !s.signalling);

/** Suites worth offering with a version (suites newer than the version are left out). */
export function candidateSuites(version: ProtocolName): CipherSuite[] {
  switch (version) {
    case 'TLSv1.3':
      return OFFERABLE.filter((s) => s.tls13);
    case 'TLSv1.2':
      return OFFERABLE.filter((s) => !s.tls13);
    case 'SSLv3':
      return OFFERABLE.filter((s) => s.minVersion === 'SSLv3');
    default:
      return OFFERABLE.filter((s) => s.minVersion === 'SSLv3' || s.minVersion === 'TLSv1.0');
  }
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}

const LEGACY: readonly ProtocolName[] = ['TLSv1.2', 'TLSv1.1', 'TLSv1.0', 'SSLv3']; // highest first

/** Enumerates protocols, suites, groups and the other wire-level properties of a TLS server. */
export async function enumerateTls(target: EnumerateTarget, options: EnumerateOptions = {}): Promise<WireFindings> {
  const started = Date.now();
  const scannedAt = new Date(started).toISOString();
  const timeoutMs = options.timeoutMs ?? 3000;
  const maxPerHello = Math.max(1, options.maxSuitesPerHello ?? 128);
  const wanted = new Set<ProtocolName>(options.protocols ?? PROTOCOLS);
  const serverName = target.serverName ?? (isIp(target.host) ? undefined : target.host);
  const limit = limiter(Math.max(1, options.concurrency ?? 8));
  const notes = new Set<string>();
  const hellos: { version: ProtocolName; hello: ProbeHello }[] = [];
  let probes = 0;
  let connectErrors = 0;

  async function send(o: ClientHelloOptions): Promise<ProbeResult> {
    const r = await limit(() => probe({ host: target.host, port: target.port }, { ...(serverName ? { serverName } : {}), ...o }, { timeoutMs }));
    probes++;
    if (r.kind === 'hello') {
      if (r.serverHello.version === TLS_VERSION[o.version]) hellos.push({ version: o.version, hello: r });
      if (r.incomplete && r.incomplete.reason !== 'closed' && r.incomplete.reason !== 'error') {
        notes.add(`a ${o.version} flight stopped after the ServerHello (${r.incomplete.reason}${r.incomplete.detail ? `: ${r.incomplete.detail}` : ''})`);
      }
    } else if (r.kind === 'timeout') {
      notes.add(`${o.version}: a probe got no answer within ${timeoutMs} ms (counted as a refusal)`);
    } else if (r.kind === 'error') {
      if (r.code === 'ECONNREFUSED' || r.code === 'EHOSTUNREACH' || r.code === 'ENETUNREACH' || r.code === 'ENOTFOUND' || r.code === 'EAI_AGAIN') {
        connectErrors++;
        notes.add(`cannot connect to ${target.host}:${target.port} (${r.code})`);
      } else if (r.code !== 'ECONNRESET' && r.code !== 'EPIPE') {
        notes.add(`${o.version}: ${r.message}`);
      }
    }
    return r;
  }

  const accepts = (r: ProbeResult, version: ProtocolName): r is ProbeHello => r.kind === 'hello' && r.serverHello.version === TLS_VERSION[version];

  // -- 1. suites per version --------------------------------------------------

  /** One chunk: offer, drop the chosen suite, repeat. Returns the chosen suites in the order chosen. */
  async function walk(version: ProtocolName, offer: readonly number[]): Promise<number[]> {
    const chosen: number[] = [];
    let remaining = [...offer];
    while (remaining.length > 0) {
      const r = await send({ version, cipherSuites: remaining });
      if (!accepts(r, version)) break;
      const c = r.serverHello.cipherSuite;
      if (!remaining.includes(c)) {
        notes.add(`${version}: the server chose ${suiteName(c)}, which was not offered (protocol violation)`);
        break;
      }
      chosen.push(c);
      remaining = remaining.filter((s) => s !== c);
    }
    return chosen;
  }

  const perVersion = new Map<ProtocolName, number[][]>();
  await Promise.all(
    PROTOCOLS.filter((v) => wanted.has(v)).map(async (version) => {
      const chunks = chunk(
        candidateSuites(version).map((s) => s.code),
        maxPerHello,
      );
      perVersion.set(version, await Promise.all(chunks.map((c) => walk(version, c))));
    }),
  );
  const acceptedOf = (v: ProtocolName) => (perVersion.get(v) ?? []).flat();
  const supported = PROTOCOLS.filter((v) => acceptedOf(v).length > 0);
  const highestLegacy = LEGACY.find((v) => supported.includes(v));

  // -- 2. order, groups, compression, fallback (concurrently) ----------------

  async function orderOf(version: ProtocolName): Promise<{ suites: number[]; serverOrder?: boolean }> {
    const lists = (perVersion.get(version) ?? []).filter((l) => l.length > 0);
    const all = lists.flat();
    if (all.length < 2) return { suites: all };
    const forward = all.slice(0, maxPerHello);
    const reverse = [...forward].reverse();
    const [a, b] = await Promise.all([send({ version, cipherSuites: forward }), send({ version, cipherSuites: reverse })]);
    if (!accepts(a, version) || !accepts(b, version)) {
      notes.add(`${version}: could not tell whose suite order applies (a probe was refused)`);
      return { suites: all };
    }
    const clientOrder = a.serverHello.cipherSuite === forward[0] && b.serverHello.cipherSuite === reverse[0];
    if (clientOrder) return { suites: all, serverOrder: false };
    // Server order: each chunk's walk is already in server order; merge the chunks by offering their heads.
    const out: number[] = [];
    const queues = lists.map((l) => [...l]);
    while (queues.filter((q) => q.length > 0).length > 1) {
      const live = queues.filter((q) => q.length > 0);
      const heads = live.map((q) => q[0] as number);
      const r = await send({ version, cipherSuites: heads });
      const c = accepts(r, version) ? r.serverHello.cipherSuite : undefined;
      const q = c === undefined ? undefined : live.find((x) => x[0] === c);
      if (!q) {
        notes.add(`${version}: the server's full preference order could not be established`);
        break;
      }
      out.push(q.shift() as number);
    }
    for (const q of queues) out.push(...q);
    return { suites: out, serverOrder: true };
  }

  async function groupsTls13(): Promise<number[]> {
    if (!supported.includes('TLSv1.3')) return [];
    const suites = acceptedOf('TLSv1.3');
    const found = await Promise.all(
      NAMED_GROUPS.filter((g) => g.tls13).map(async (g) => {
        const r = await send({ version: 'TLSv1.3', cipherSuites: suites, groups: [g.code], keyShares: [] });
        return accepts(r, 'TLSv1.3') && r.serverHello.keyShareGroup === g.code ? g.code : undefined;
      }),
    );
    return found.filter((g): g is number => g !== undefined);
  }

  async function groupsLegacy(): Promise<number[]> {
    if (!highestLegacy) return [];
    const ecdhe = acceptedOf(highestLegacy).filter((c) => suiteByCode(c)?.kx === 'ECDHE');
    if (ecdhe.length === 0) return [];
    const found = await Promise.all(
      NAMED_GROUPS.filter((g) => g.tls12).map(async (g) => {
        const r = await send({ version: highestLegacy, cipherSuites: ecdhe, groups: [g.code] });
        const ske = accepts(r, highestLegacy) ? r.serverKeyExchange : undefined;
        return ske?.kind === 'ecdh' && ske.namedGroup === g.code ? g.code : undefined;
      }),
    );
    return found.filter((g): g is number => g !== undefined);
  }

  async function compression(): Promise<boolean | undefined> {
    if (!highestLegacy) return supported.length > 0 ? false : undefined; // TLS 1.3 has no compression
    const r = await send({ version: highestLegacy, cipherSuites: acceptedOf(highestLegacy).slice(0, maxPerHello), offerCompression: true });
    if (!accepts(r, highestLegacy)) {
      notes.add(`${highestLegacy}: a hello offering DEFLATE was refused (${r.kind === 'alert' ? r.name : r.kind}); compression counted as off`);
      return false;
    }
    return r.serverHello.compression !== 0;
  }

  async function fallback(): Promise<Findings['fallbackScsv']> {
    const ordered = [...supported].reverse(); // highest first
    if (ordered.length === 0) return undefined;
    if (ordered.length === 1) return 'not-applicable';
    const lower = ordered[1] as ProtocolName;
    const r = await send({ version: lower, cipherSuites: acceptedOf(lower).slice(0, maxPerHello), fallbackScsv: true });
    if (r.kind === 'alert' && r.description === ALERT.inappropriateFallback) return 'supported';
    if (r.kind === 'hello') return 'not-supported';
    notes.add(`TLS_FALLBACK_SCSV: a ${lower} hello with the SCSV got ${r.kind === 'alert' ? `the alert ${r.name}` : r.kind}, neither inappropriate_fallback nor a ServerHello`);
    return undefined;
  }

  const [orders, g13, g12, compressed, fallbackScsv] = await Promise.all([
    Promise.all(PROTOCOLS.map(async (v) => [v, await orderOf(v)] as const)),
    groupsTls13(),
    groupsLegacy(),
    compression(),
    fallback(),
  ]);

  // -- 3. findings --------------------------------------------------------------

  const protocols: ProtocolFindings[] = orders.map(([protocol, o]) => ({
    protocol,
    supported: o.suites.length > 0,
    suites: o.suites.map(suiteName),
    ...(o.serverOrder === undefined ? {} : { serverOrder: o.serverOrder }),
  }));

  const groupOrder = [...DEFAULT_GROUPS_TLS13, ...NAMED_GROUPS.map((g) => g.code)];
  const groupSet = new Set([...g13, ...g12]);
  const groups = [...new Set(groupOrder)].filter((g) => groupSet.has(g)).map(groupName);

  const rank = (v: ProtocolName) => PROTOCOLS.indexOf(v);
  const legacyHellos = hellos.filter((h) => h.version !== 'TLSv1.3').sort((a, b) => rank(b.version) - rank(a.version));

  let dheBits: number | undefined;
  for (const { hello } of hellos) {
    const ske = hello.serverKeyExchange;
    if (ske?.kind === 'dh') dheBits = dheBits === undefined ? ske.primeBits : Math.min(dheBits, ske.primeBits);
  }

  let secureRenegotiation: boolean | undefined;
  if (legacyHellos.length > 0) {
    const withRi = legacyHellos.filter((h) => h.hello.serverHello.secureRenegotiation).length;
    secureRenegotiation = withRi === legacyHellos.length;
    if (withRi > 0 && !secureRenegotiation) notes.add('renegotiation_info was in some ServerHellos but not all');
  }

  const chains: HelloChain[] = [];
  for (const { version, hello } of legacyHellos) {
    const chain = hello.certificate?.certificates;
    if (!chain || chain.length === 0) continue;
    const same = chains.find((c) => c.chain[0]?.equals(chain[0] as Buffer));
    if (same) {
      if (hello.certificateStatus) same.ocspStapled = true;
      continue;
    }
    chains.push({ chain, ocspStapled: hello.certificateStatus !== undefined, protocol: version, suite: suiteName(hello.serverHello.cipherSuite) });
  }

  let clientAuthFromHello: HelloClientAuth | undefined;
  const request = legacyHellos.find((h) => h.hello.certificateRequest);
  if (request?.hello.certificateRequest) {
    const cr = request.hello.certificateRequest;
    clientAuthFromHello = {
      caNames: cr.certificateAuthorities,
      certificateTypes: cr.certificateTypes,
      ...(cr.signatureAlgorithms ? { signatureAlgorithms: cr.signatureAlgorithms } : {}),
      protocol: request.version,
    };
  }
  if (!highestLegacy && supported.includes('TLSv1.3')) {
    notes.add('TLS 1.3 only: the certificate and any CertificateRequest are encrypted, so the byte-level probes cannot see them');
  }

  if (supported.length === 0 && connectErrors === 0 && probes > 0) notes.add('no protocol version was accepted');

  return {
    target: { host: target.host, port: target.port, ...(target.serverName ? { serverName: target.serverName } : {}) },
    scannedAt,
    durationMs: Date.now() - started,
    protocols,
    groups,
    ...(dheBits === undefined ? {} : { dheBits }),
    ...(secureRenegotiation === undefined ? {} : { secureRenegotiation }),
    ...(compressed === undefined ? {} : { compression: compressed }),
    ...(fallbackScsv === undefined ? {} : { fallbackScsv }),
    ...(chains[0] ? { certificateFromHello: chains[0].chain, chainsFromHello: chains } : {}),
    ...(clientAuthFromHello ? { clientAuthFromHello } : {}),
    clientAuthVisible: legacyHellos.length > 0,
    notes: [...notes],
    probes,
  };
}

