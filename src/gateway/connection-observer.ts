import { createHash } from 'node:crypto';
import type { CertificateView } from '../pki/index.js';
import { groupName, judgeConnection, policyProtocol, protocolOfWire, PROTOCOL_ORDER, suiteName, type ConnectionFacts, type ConnectionVerdict, type PolicyOutlook, type PolicyState, type Protocol } from '../policy/index.js';
import { offeredVersions, parseClientHello, type ClientHelloSummary } from '../listener/index.js';
import type { ObservationRow } from '../store/index.js';
import type { ClientIdentity } from './client-identity.js';
import type { Logger } from './log.js';
import type { RefusalReason } from './refusal.js';

/**
 * Observation before enforcement: every handshake the gateway decides is
 * also judged under the coming policy (policy/connection-verdict.ts, the
 * same rules the gateway will enforce), and what the client used or offered
 * is summed per day and facility (per address and ClientHello for a client
 * that showed no certificate) in memory, then upserted in batches off the
 * handshake path (one transaction per interval, like the audit batch). A
 * client refused in the handshake (an old protocol, no shared suite) is
 * recorded with what its ClientHello offered.
 *
 * Bounded: at most `maxRows` distinct rows per interval; beyond that, new
 * rows fold into subject "*" (counted, identity lost), so a flood of
 * addresses costs a fixed amount of memory and of rows per interval. A
 * failed write keeps the rows for the next one, under the same bound.
 */
export interface ObservationSink {
  upsert(rows: readonly ObservationRow[]): Promise<void>;
  /** Deletes days before `day`; called once a day for the retention. */
  prune?(before: string): Promise<number>;
}

export interface ObservedHandshake {
  /** The client's address (no port). */
  address: string;
  /** The first record the client sent (its ClientHello), when it was captured. */
  hello?: Buffer;
  /** Negotiated, as Node reports them (absent when the handshake failed). */
  protocol?: string;
  suite?: string;
  identity?: ClientIdentity;
  views?: readonly CertificateView[];
  /** The gateway's own refusal, if it refused. */
  refusal?: RefusalReason;
  /** The refusal happened in the handshake (before any certificate was seen). */
  inHandshake?: boolean;
}

export interface ConnectionObserverOptions {
  outlook: () => PolicyOutlook;
  sink: ObservationSink;
  log: Logger;
  /** How often the sums are written (ms, default 5000). */
  intervalMs?: number;
  /** Distinct rows per interval (default 10 000). */
  maxRows?: number;
  /** New rows of clients that showed no certificate (one per address and hello) per day, across intervals (default 5 × maxRows); beyond it they fold into "*", so a stream of addresses and random hellos cannot add millions of table rows a day. */
  maxAnonymousRowsPerDay?: number;
  /** Days of observations kept (default 400). */
  retentionDays?: number;
  now?: () => Date;
}

interface Judged {
  outlook: PolicyOutlook;
  vNow: ConnectionVerdict;
  vComing?: ConnectionVerdict;
  offered: Protocol[];
  hello: string;
}

const NO_CHAIN: readonly CertificateView[] = Object.freeze([]);
const JST_MS = 9 * 3_600_000;
/** Refusals a policy decides (judgeConnection covers them); any other refusal does not depend on the policy. */
const POLICY_REASONS: ReadonlySet<string> = new Set(['PROTOCOL_TOO_OLD', 'NO_SHARED_CIPHER', 'SHA1_SIGNATURE', 'WRONG_EKU', 'KEY_TOO_WEAK', 'KEY_NOT_CONFORMANT']);
const DAY_MS = 86_400_000;
/** Suites listed per row (what a refused client offered); the rest are counted as "+N". */
const SUITES_LISTED = 24;


/** "accepted", or the problem codes joined by "+". */
export function verdictCode(v: ConnectionVerdict): string {
  return v.accepted ? 'accepted' : v.problems.map((p) => p.code).join('+');
}

/** The versions a hello offers, by name (SSL 2.0-format hellos name "SSLv2" when that is all they offer). */
export function offeredProtocols(h: ClientHelloSummary): Protocol[] {
  const out: Protocol[] = [];
  for (const v of offeredVersions(h)) {
    const p = protocolOfWire(v);
    if (p && !out.includes(p)) out.push(p);
  }
  return out.sort((a, b) => PROTOCOL_ORDER.indexOf(b) - PROTOCOL_ORDER.indexOf(a));
}

/** A short, stable id of what a hello offered (versions, suites, groups): tells clients at one address apart. */
export function helloId(h: ClientHelloSummary): string {
  return createHash('sha256').update(`${h.format}|${offeredVersions(h).join(',')}|${h.suites.join(',')}|${h.groups.join(',')}`).digest('hex').slice(0, 16);
}

const keyText = new WeakMap<CertificateView, string>();
/** "RSA 2048", "EC P-256", … (computed once per cached view). */
export function keyDescription(v: CertificateView): string {
  let t = keyText.get(v);
  if (t === undefined) {
    const k = v.publicKey;
    const d = k.asymmetricKeyDetails ?? {};
    t = k.asymmetricKeyType === 'rsa' || k.asymmetricKeyType === 'rsa-pss' ? `RSA ${d.modulusLength ?? '?'}` : k.asymmetricKeyType === 'ec' ? `EC ${d.namedCurve ?? '?'}` : String(k.asymmetricKeyType ?? 'unknown');
    keyText.set(v, t);
  }
  return t;
}

export class ConnectionObserver {
  #rows = new Map<string, ObservationRow>();
  #folded = 0;
  #since: number;
  #flushing: Promise<void> | undefined;
  #day = { start: 0, end: 0, text: '' };
  #prunedDay = '';
  /** New rows of unidentified clients added today (a key seen again in a later interval counts again: conservative). */
  #anonymous = { day: '', rows: 0 };
  readonly #maxAnonymous: number;
  /** Per policy state: the same state with the certificate requirement relaxed (judging a handshake that never reached the certificate). */
  readonly #beforeCert = new WeakMap<PolicyState, PolicyState>();
  readonly #byChain = new WeakMap<readonly CertificateView[], Map<string, Judged>>();
  readonly #byHello = new Map<string, Judged>();
  readonly #now: () => Date;
  readonly #maxRows: number;
  readonly #intervalMs: number;
  /** Written, folded and failed, for status and tests. */
  readonly stats = { noted: 0, written: 0, folded: 0, failures: 0 };

  constructor(private readonly o: ConnectionObserverOptions) {
    this.#now = o.now ?? (() => new Date());
    this.#maxRows = o.maxRows ?? 10_000;
    this.#intervalMs = o.intervalMs ?? 5_000;
    this.#maxAnonymous = o.maxAnonymousRowsPerDay ?? 5 * this.#maxRows;
    this.#since = this.#now().getTime();
  }

  /** Judges one handshake under the policy in force and the coming one and adds it to the sums; returns the verdicts. */
  note(h: ObservedHandshake): { now: ConnectionVerdict; coming?: ConnectionVerdict } | undefined {
    const summary = h.hello && (h.inHandshake || !h.identity) ? parseClientHello(h.hello) : undefined;
    const negotiated = policyProtocol(h.protocol);
    if (!negotiated && !summary) return undefined; // not a TLS client (nothing to judge): the refusal digest counts it
    const outlook = this.o.outlook();
    const t = this.#now();
    const j = summary && !negotiated ? this.#judgeHello(summary, h, outlook, t) : this.#judgeNegotiated(negotiated!, h, outlook, t);
    const { vNow, vComing } = j;
    const chain = h.views ?? NO_CHAIN;
    const offered = j.offered.length || !summary ? j.offered : offeredProtocols(summary);
    let now = verdictCode(vNow);
    if (h.refusal && !vNow.problems.some((p) => p.code === h.refusal)) now = vNow.accepted ? h.refusal : `${now}+${h.refusal}`;
    let coming = vComing ? verdictCode(vComing) : '';
    // A refusal no policy switch changes (no certificate, expired, revoked, unknown CA, …) stands under the coming policy too.
    if (vComing && h.refusal && !POLICY_REASONS.has(h.refusal)) coming = vComing.accepted ? h.refusal : `${coming}+${h.refusal}`;
    const id = h.identity;
    const subject = id ? (id.facilityNumber ?? `cert:${id.serial}`) : `addr:${h.address}`;
    const hello = id ? '' : j.hello || (summary ? helloId(summary) : '');
    const protocol = negotiated ?? offered[0] ?? (summary?.format === 'sslv2' ? 'SSLv2' : '');
    const day = this.#dayOf(t.getTime());
    const key = `${day}\u0000${subject}\u0000${id?.serial ?? ''}\u0000${protocol}\u0000${h.suite ?? ''}\u0000${hello}\u0000${now}\u0000${coming}\u0000${outlook.coming?.profile.name ?? ''}`;
    this.stats.noted++;
    const iso = t.toISOString();
    const row = this.#rows.get(key);
    if (row) {
      row.connections++;
      row.lastSeen = iso;
    } else {
      this.#add(key, {
        day,
        subject,
        serial: id?.serial ?? '',
        protocol,
        suite: h.suite ?? '',
        hello,
        verdictNow: now,
        verdictComing: coming,
        comingProfile: outlook.coming?.profile.name ?? '',
        profileNow: outlook.inForce.profile.name,
        facility: id?.facilityNumber ?? null,
        address: id ? null : h.address,
        offeredVersions: summary ? (offered.join(',') || (summary.format === 'sslv2' ? 'SSLv2' : '')) : '',
        offeredSuites: summary ? listed(summary.suites.map(suiteName), SUITES_LISTED) : '',
        groupsOffered: summary ? listed(summary.groups.map(groupName), 16) : h.hello ? groupsOf(h.hello) : '',
        certSignature: chain[0] ? (chain[0].signatureAlgorithm ?? chain[0].signatureAlgorithmOid) : '',
        certKey: chain[0] ? keyDescription(chain[0]) : '',
        certRule: certRuleOf(vComing ?? vNow),
        exceptions: [...new Set([...vNow.exceptionsUsed, ...(vComing?.exceptionsUsed ?? [])].map((e) => `${e.allow}<=${e.until}`))].join(','),
        refusal: h.refusal ?? '',
        connections: 1,
        firstSeen: iso,
        lastSeen: iso,
      });
    }
    return { now: vNow, ...(vComing ? { coming: vComing } : {}) };
  }

  /**
   * Verdicts of a completed handshake, memoized per cached chain (the
   * verifier keeps one views array per certificate), protocol, suite and
   * refusal, for as long as the outlook object stays the same (the active
   * policy makes a new one at each change).
   */
  #judgeNegotiated(protocol: Protocol, h: ObservedHandshake, outlook: PolicyOutlook, t: Date): Judged {
    const chain = h.views ?? NO_CHAIN;
    const k = `${protocol}|${h.suite ?? ''}|${h.refusal ?? ''}|${h.identity?.facilityNumber ?? ''}`;
    let memo = this.#byChain.get(chain);
    const hit = memo?.get(k);
    if (hit && hit.outlook === outlook && chain !== NO_CHAIN) return hit;
    const facts: ConnectionFacts = { protocol, ...(h.suite ? { suite: h.suite } : {}), clientChain: chain, ...(h.identity?.facilityNumber ? { facility: h.identity.facilityNumber } : {}) };
    const j: Judged = { outlook, vNow: judgeConnection(facts, outlook.inForce, t), ...(outlook.coming ? { vComing: judgeConnection(facts, outlook.coming, outlook.coming.since) } : {}), offered: [], hello: '' };
    if (chain !== NO_CHAIN) {
      if (!memo) this.#byChain.set(chain, (memo = new Map()));
      if (memo.size > 16) memo.clear();
      memo.set(k, j);
    }
    return j;
  }

  /** Verdicts of a hello refused in the handshake, memoized per distinct offer (bounded), so a flood of one old client costs a parse and a lookup. */
  #judgeHello(summary: ClientHelloSummary, h: ObservedHandshake, outlook: PolicyOutlook, t: Date): Judged {
    const k = `${summary.format}|${offeredVersions(summary).join(',')}|${summary.suites.join(',')}|${summary.groups.join(',')}|${h.refusal ?? ''}|${!!h.inHandshake}|${h.views?.length ?? 0}`;
    const hit = this.#byHello.get(k);
    if (hit && hit.outlook === outlook && !h.views) return hit;
    const offered = offeredProtocols(summary);
    const facts: ConnectionFacts = { offered: { protocols: offered, suites: summary.suites.map(suiteName) }, clientChain: h.views ?? NO_CHAIN };
    // A handshake refused before the certificate stage says nothing about the certificate.
    const relax = !!h.inHandshake && h.refusal !== 'NO_CLIENT_CERT';
    const j: Judged = {
      outlook,
      vNow: judgeConnection(facts, relax ? this.#relaxed(outlook.inForce) : outlook.inForce, t),
      ...(outlook.coming ? { vComing: judgeConnection(facts, relax ? this.#relaxed(outlook.coming) : outlook.coming, outlook.coming.since) } : {}),
      offered,
      hello: helloId(summary),
    };
    if (!h.views) {
      if (this.#byHello.size >= 256) this.#byHello.clear();
      this.#byHello.set(k, j);
    }
    return j;
  }

  #relaxed(state: PolicyState): PolicyState {
    let r = this.#beforeCert.get(state);
    if (!r) this.#beforeCert.set(state, (r = { ...state, profile: { ...state.profile, clientCertificate: 'optional' } }));
    return r;
  }

  #add(key: string, row: ObservationRow): void {
    let overDaily = false;
    if (row.address !== null && row.subject !== '*') {
      if (this.#anonymous.day !== row.day) this.#anonymous = { day: row.day, rows: 0 };
      overDaily = this.#anonymous.rows >= this.#maxAnonymous;
      if (!overDaily) this.#anonymous.rows++;
    }
    if (this.#rows.size < this.#maxRows && !overDaily) {
      this.#rows.set(key, row);
      return;
    }
    // Over the bound: fold into one row per (day, protocol, suite, verdicts), subject "*".
    this.#folded++;
    this.stats.folded++;
    const folded = { ...row, subject: '*', serial: '', hello: '', facility: null, address: null, offeredSuites: '', groupsOffered: '', certSignature: '', certKey: '', exceptions: '' };
    const fk = `${row.day}\u0000*\u0000\u0000${row.protocol}\u0000${row.suite}\u0000\u0000${row.verdictNow}\u0000${row.verdictComing}\u0000${row.comingProfile}`;
    const seen = this.#rows.get(fk);
    if (seen) {
      seen.connections += row.connections;
      if (row.lastSeen > seen.lastSeen) seen.lastSeen = row.lastSeen;
      if (row.firstSeen < seen.firstSeen) seen.firstSeen = row.firstSeen;
    } else this.#rows.set(fk, folded);
  }

  #dayOf(t: number): string {
    const d = this.#day;
    if (t < d.start || t >= d.end) {
      const start = Math.floor((t + JST_MS) / DAY_MS) * DAY_MS - JST_MS;
      this.#day = { start, end: start + DAY_MS, text: new Date(start + JST_MS).toISOString().slice(0, 10) };
    }
    return this.#day.text;
  }

  /** Writes the sums when the interval is over (from the gateway's 1-second tick). */
  tick(): void {
    if (this.#now().getTime() - this.#since >= this.#intervalMs) void this.flush();
  }

  /** Writes what is summed so far; one write at a time. */
  flush(): Promise<void> {
    if (this.#flushing) return this.#flushing;
    this.#since = this.#now().getTime();
    if (!this.#rows.size) return Promise.resolve();
    const rows = [...this.#rows.values()];
    const folded = this.#folded;
    this.#rows = new Map();
    this.#folded = 0;
    this.#flushing = (async () => {
      try {
        await this.o.sink.upsert(rows);
        this.stats.written += rows.length;
        if (folded) this.o.log.log('warn', 'connection observations over the per-interval bound were folded into one row per protocol and verdict', { folded, maxRows: this.#maxRows });
        await this.#prune();
      } catch (e) {
        this.stats.failures++;
        this.o.log.log('error', 'writing connection observations failed; they are kept for the next write', { rows: rows.length, error: e instanceof Error ? e.message : String(e) });
        for (const r of rows) {
          const k = `${r.day}\u0000${r.subject}\u0000${r.serial}\u0000${r.protocol}\u0000${r.suite}\u0000${r.hello}\u0000${r.verdictNow}\u0000${r.verdictComing}\u0000${r.comingProfile}`;
          const seen = this.#rows.get(k);
          if (seen) {
            seen.connections += r.connections;
            if (r.firstSeen < seen.firstSeen) seen.firstSeen = r.firstSeen;
          } else this.#add(k, r);
        }
      } finally {
        this.#flushing = undefined;
      }
    })();
    return this.#flushing;
  }

  async #prune(): Promise<void> {
    const today = this.#dayOf(this.#now().getTime());
    if (this.#prunedDay === today || !this.o.sink.prune) return;
    this.#prunedDay = today;
    const before = new Date(Date.parse(today) - (this.o.retentionDays ?? 400) * DAY_MS).toISOString().slice(0, 10);
    await this.o.sink.prune(before);
  }

  /** Rows summed and not yet written. */
  pending(): number {
    return this.#rows.size;
  }
}

function listed(names: readonly string[], max: number): string {
  return names.slice(0, max).join(',') + (names.length > max ? `,+${names.length - max}` : '');
}

/** Groups of a completed handshake's hello (only when a row is new). */
function groupsOf(hello: Buffer): string {
  const s = parseClientHello(hello);
  return s ? listed(s.groups.map(groupName), 16) : '';
}

const CERT_RULES = new Set(['SHA1_SIGNATURE', 'WRONG_EKU', 'KEY_TOO_WEAK', 'KEY_NOT_CONFORMANT']);
/** The certificate rule the chain breaks (or relies on an exception for), from the verdict. */
function certRuleOf(v: ConnectionVerdict): string {
  return v.problems.find((p) => CERT_RULES.has(p.code))?.code ?? v.exceptionsUsed[0]?.allow ?? '';
}
