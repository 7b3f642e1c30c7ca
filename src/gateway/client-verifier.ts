import { timingSafeEqual, type X509Certificate } from 'node:crypto';
import { describeCertificate, type CertificateView } from '../pki/index.js';
import { judgeClientChain, type ClientCertificatePolicy, type DatedException } from '../policy/index.js';
import { identityOf, type ClientIdentity } from './client-identity.js';
import type { FacilityDirectory } from './facility-directory.js';
import type { RefusalReason } from './refusal.js';
import { serialKey, type RevocationSource } from './revocation.js';

export type Verdict =
  | {
      ok: true;
      identity: ClientIdentity;
      exceptionsUsed: DatedException[];
      /** "issuer fingerprint|serial" of every certificate under the anchor: a later revocation of any of them closes the connection. */
      revocationKeys: string[];
      /** The chain as judged (leaf first, anchor last; the leaf alone when pinned), cached per certificate: observation judges it under the coming policy, and a later policy judges the open connection by it. */
      views: readonly CertificateView[];
    }
  | {
      ok: false;
      reason: RefusalReason;
      detail: string;
      /** Present when the certificate chains to a trusted CA: the client is someone we know, and may be told why on a page. */
      identity?: ClientIdentity;
      /** The chain as judged, when it chains to a trusted CA or pin. */
      views?: readonly CertificateView[];
    };

/** A problem the gateway would refuse a client certificate for, whatever the TLS policy (chain, revocation, validity, facility). */
export interface CertificateStandingProblem {
  reason: Extract<RefusalReason, 'UNKNOWN_CA' | 'REVOKED' | 'REVOCATION_UNAVAILABLE' | 'EXPIRED' | 'NOT_YET_VALID' | 'FACILITY_UNKNOWN' | 'FACILITY_SUSPENDED'>;
  detail: string;
}

/**
 * Everything the verifier knows about a client certificate, not only the
 * first reason to refuse it: for the self-check page, which tells a clinic
 * all that is wrong in one visit. Built by the same rules as `verify`.
 */
export interface ClientInspection {
  /** Leaf first; up to and including the trust anchor when it chains, else only the leaf. Empty when the certificate cannot be parsed. */
  views: CertificateView[];
  /** Chains to a trust anchor, or is pinned. */
  trusted: boolean;
  pinned: boolean;
  /** Why it is not trusted (said plainly). */
  untrustedDetail?: string;
  /** Who it names; only for a trusted certificate (a stranger's certificate names whoever it likes). */
  identity?: ClientIdentity;
  /** Revocation of every certificate under the anchor, from the gateway's revocation sources: unknown when it does not chain or the information is stale. */
  revocation: { state: 'good' | 'revoked' | 'unknown'; detail?: string };
  /** The facility's registration, when the gateway follows a facility registry and the certificate names one. */
  facility?: { number: string; name?: string; status: string };
  /** What the gateway would refuse it for at an instant (validity is judged at `at`). */
  problemsAt(at: Date): CertificateStandingProblem[];
}

export interface ClientVerifierOptions {
  /** Trust anchors: the CA certificates a client chain must end at (roots and/or issuing CAs). */
  anchors: readonly X509Certificate[];
  /** SHA-256 fingerprints (hex, any case, colons allowed) of individually trusted client certificates (IHE ITI-19's second method). */
  pins?: readonly string[];
  policy: ClientCertificatePolicy;
  revocation: readonly RevocationSource[];
  /** Whether revocation information may be relied on now (false: fail closed). */
  revocationUsable: () => boolean;
  facilities?: FacilityDirectory;
  now?: () => Date;
}

interface Chain {
  /** Leaf first, anchor last (just the leaf for a pinned certificate). */
  certs: X509Certificate[];
  views: CertificateView[];
  pinned: boolean;
  identity: ClientIdentity;
  revocationKeys: string[];
  /** The same, as pairs, for the per-handshake check. */
  revocationPairs: { issuer: string; serial: string }[];
}

const MAX_DEPTH = 6;

/** The first certificate of the chain not valid at `at` (the rule `verify` and `inspect` share). */
function validityProblem(views: readonly CertificateView[], at: Date): CertificateStandingProblem | undefined {
  for (const [i, v] of views.entries()) {
    const which = i === 0 ? 'the client certificate' : `chain certificate ${i}`;
    if (at < v.notBefore) return { reason: 'NOT_YET_VALID', detail: `${which} is valid only from ${v.notBefore.toISOString()}` };
    if (at > v.notAfter) return { reason: 'EXPIRED', detail: `${which} expired at ${v.notAfter.toISOString()}` };
  }
  return undefined;
}
const CACHE_LIMIT = 10_000;

/**
 * Decides whether a client certificate may in, and says why not. The TLS
 * layer only collects the certificate (OpenSSL's own verdict is reported by
 * Node as an opaque code, SHA-1 as "UNSPECIFIED"); every rule is applied here,
 * each with its own reason: chain to an anchor or a pin, validity of every
 * certificate, the client certificate policy (SHA-1, EKU, key size, dated
 * exceptions), revocation of every certificate under the anchor, facility
 * status. Chain building and signature checks are cached per certificate
 * fingerprint; time, revocation and status are checked on every handshake.
 */
export class ClientVerifier {
  readonly #anchors: X509Certificate[];
  readonly #anchorFingerprints: Set<string>;
  readonly #pins: Buffer[];
  readonly #chains = new Map<string, Chain | { unknown: string }>();
  readonly #now: () => Date;

  constructor(private readonly o: ClientVerifierOptions) {
    if (o.anchors.length === 0 && !o.pins?.length) throw new Error('a client verifier needs at least one trust anchor or pinned certificate');
    this.#anchors = [...o.anchors];
    this.#anchorFingerprints = new Set(o.anchors.map((a) => a.fingerprint256));
    this.#pins = (o.pins ?? []).map((p) => Buffer.from(p.replace(/:/g, ''), 'hex'));
    this.#now = o.now ?? (() => new Date());
  }

  /**
   * `presented` (the intermediates the client sent) may be given as a
   * function: it is then called only when the chain of this certificate is
   * not cached yet, which spares collecting the peer chain on every handshake.
   */
  verify(leaf: X509Certificate, presented: readonly X509Certificate[] | (() => readonly X509Certificate[]) = []): Verdict {
    const chain = this.#chain(leaf, presented);
    if ('unknown' in chain) return { ok: false, reason: 'UNKNOWN_CA', detail: chain.unknown };
    const { identity } = chain;
    const now = this.#now();
    if (!this.o.revocationUsable()) {
      return { ok: false, reason: 'REVOCATION_UNAVAILABLE', detail: 'revocation information is stale or unavailable and the gateway fails closed', identity, views: chain.views };
    }
    const revoked = this.#revoked(chain);
    if (revoked) return { ok: false, reason: 'REVOKED', detail: revoked, identity, views: chain.views };
    const invalid = validityProblem(chain.views, now);
    if (invalid) return { ok: false, ...invalid, identity, views: chain.views };
    const judgement = judgeClientChain(chain.views, identity.facilityNumber, this.o.policy, now);
    if (judgement.refusal) return { ok: false, reason: judgement.refusal.rule, detail: judgement.refusal.detail, identity, views: chain.views };
    const facility = this.#facilityProblem(identity);
    if (facility) return { ok: false, ...facility, identity, views: chain.views };
    return { ok: true, identity, exceptionsUsed: judgement.exceptionsUsed, revocationKeys: chain.revocationKeys, views: chain.views };
  }

  /**
   * The self-check's view of a client certificate: the chain built as
   * `verify` builds it, revocation from the same sources, the facility's
   * status, and the validity at any instant (the coming policy's start,
   * too). It decides nothing and grants nothing.
   */
  inspect(leaf: X509Certificate, presented: readonly X509Certificate[] = []): ClientInspection {
    const chain = this.#chain(leaf, presented, false);
    if ('unknown' in chain) {
      let views: CertificateView[] = [];
      try {
        views = [describeCertificate(leaf.raw)];
      } catch {
        // An unparseable certificate: nothing to show but that it does not chain.
      }
      const problem: CertificateStandingProblem = { reason: 'UNKNOWN_CA', detail: chain.unknown };
      return { views, trusted: false, pinned: false, untrustedDetail: chain.unknown, revocation: { state: 'unknown', detail: 'not checked: the certificate does not chain to this network\'s CA' }, problemsAt: (at) => [problem, ...(views.length ? [validityProblem(views.slice(0, 1), at)].filter((p): p is CertificateStandingProblem => Boolean(p)) : [])] };
    }
    const { identity } = chain;
    const usable = this.o.revocationUsable();
    const revokedDetail = usable ? this.#revoked(chain) : undefined;
    const revocation: ClientInspection['revocation'] = !usable
      ? { state: 'unknown', detail: 'revocation information is stale or unavailable' }
      : revokedDetail
        ? { state: 'revoked', detail: revokedDetail }
        : { state: 'good' };
    const f = this.o.facilities && identity.facilityNumber ? this.o.facilities.lookup(identity.facilityNumber) : undefined;
    const facilityProblem = this.#facilityProblem(identity);
    return {
      views: chain.views,
      trusted: true,
      pinned: chain.pinned,
      identity,
      revocation,
      ...(this.o.facilities && identity.facilityNumber ? { facility: { number: identity.facilityNumber, ...(f ? { name: f.name } : {}), status: f ? f.status : 'unregistered' } } : {}),
      problemsAt: (at) => {
        const out: CertificateStandingProblem[] = [];
        if (!usable) out.push({ reason: 'REVOCATION_UNAVAILABLE', detail: 'revocation information is stale or unavailable and the gateway fails closed' });
        if (revokedDetail) out.push({ reason: 'REVOKED', detail: revokedDetail });
        const invalid = validityProblem(chain.views, at);
        if (invalid) out.push(invalid);
        if (facilityProblem) out.push(facilityProblem);
        return out;
      },
    };
  }

  /** Why a certificate under the anchor is revoked, or undefined. */
  #revoked(chain: Chain): string | undefined {
    for (const [i, { issuer, serial }] of chain.revocationPairs.entries()) {
      for (const source of this.o.revocation) {
        if (source.isRevoked(issuer, serial)) return `${i === 0 ? 'the client certificate' : `chain certificate ${i}`} (serial ${serial}) is revoked (${source.name})`;
      }
    }
    return undefined;
  }

  #facilityProblem(identity: ClientIdentity): CertificateStandingProblem | undefined {
    if (!this.o.facilities || identity.profile === 'other') return undefined;
    const f = this.o.facilities.lookup(identity.facilityNumber!);
    if (!f) return { reason: 'FACILITY_UNKNOWN', detail: `facility ${identity.facilityNumber} is not registered` };
    if (f.status !== 'active') return { reason: 'FACILITY_SUSPENDED', detail: `facility ${identity.facilityNumber} is ${f.status}` };
    return undefined;
  }

  /** Chains held in the cache (built once per certificate fingerprint). */
  get cachedChains(): number {
    return this.#chains.size;
  }

  /** `remember` false: read the cache, never write it (the self-check must not evict the chains of the gateway's clients). */
  #chain(leaf: X509Certificate, given: readonly X509Certificate[] | (() => readonly X509Certificate[]), remember = true): Chain | { unknown: string } {
    const key = leaf.fingerprint256;
    const cached = this.#chains.get(key);
    if (cached) return cached;
    const presented = typeof given === 'function' ? given() : given;
    const built = this.#build(leaf, presented);
    if (!remember) return built;
    // Unknown chains are cached only when nothing was presented (a later client may send the missing intermediate).
    if (!('unknown' in built) || presented.length === 0) {
      if (this.#chains.size >= CACHE_LIMIT) this.#chains.delete(this.#chains.keys().next().value!);
      this.#chains.set(key, built);
    }
    return built;
  }

  #build(leaf: X509Certificate, presented: readonly X509Certificate[]): Chain | { unknown: string } {
    let views: CertificateView[];
    try {
      views = [describeCertificate(leaf.raw)];
    } catch {
      return { unknown: 'the client certificate cannot be parsed' };
    }
    const leafFp = Buffer.from(leaf.fingerprint256.replace(/:/g, ''), 'hex');
    const fingerprint = leafFp.toString('hex');
    const certs = [leaf];
    let current = leaf;
    for (let depth = 0; depth < MAX_DEPTH && !this.#anchorFingerprints.has(current.fingerprint256); depth++) {
      const issuer = [...this.#anchors, ...presented].find((c) => c !== current && current.checkIssued(c) && (c.ca || this.#anchorFingerprints.has(c.fingerprint256)) && current.verify(c.publicKey));
      if (!issuer) break;
      certs.push(issuer);
      try {
        views.push(describeCertificate(issuer.raw));
      } catch {
        return { unknown: 'a chain certificate cannot be parsed' };
      }
      current = issuer;
    }
    const anchored = this.#anchorFingerprints.has(current.fingerprint256) && current !== leaf;
    // Each CA's pathLenConstraint bounds the CA certificates below it (RFC 5280 §4.2.1.9; self-issued ones do not count),
    // as OpenSSL checks in the handshake: a CA:TRUE certificate below a pathlen:0 CA may not issue.
    if (anchored) {
      for (let k = 2; k < views.length; k++) {
        const limit = views[k]!.extensions.basicConstraints?.pathLength;
        if (limit === undefined) continue;
        const below = certs.slice(1, k).filter((c) => c.subject !== c.issuer).length;
        if (below > limit) return { unknown: `the chain breaks the path length constraint of "${certs[k]!.subject.replace(/\n/g, ', ')}" (at most ${limit} CA certificate${limit === 1 ? '' : 's'} below it, ${below} found)` };
      }
    }
    const pinned = this.#pins.some((p) => p.length === leafFp.length && timingSafeEqual(p, leafFp));
    if (!anchored && !pinned) {
      return { unknown: `no trusted CA issued "${leaf.issuer.replace(/\n/g, ', ')}" (the certificate is not from this network's CA and is not pinned)` };
    }
    const used = anchored ? certs : [leaf];
    const usedViews = anchored ? views : views.slice(0, 1);
    const chainDer = used.slice(1, anchored ? -1 : undefined).map((c) => c.raw);
    const revocationPairs = used.slice(0, -1).map((c, i) => ({ issuer: used[i + 1]!.fingerprint256, serial: serialKey(c.serialNumber) }));
    const revocationKeys = revocationPairs.map((p) => `${p.issuer}|${p.serial}`);
    return { certs: used, views: usedViews, pinned: !anchored, identity: identityOf(usedViews[0]!, leaf.raw, fingerprint, chainDer, !anchored), revocationKeys, revocationPairs };
  }
}
