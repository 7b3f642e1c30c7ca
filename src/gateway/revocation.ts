import { readFile, stat } from 'node:fs/promises';
import type { X509Certificate } from 'node:crypto';
import { parseCrlSummary, subjectNameDer, verifyCrlSignature } from '../pki/index.js';
import { serialKey } from './serial-key.js';
import { SerialSet } from './serial-set.js';
import type { StoreStatusFeed } from './status-feed.js';

export { serialKey };

/**
 * Revocation as the gateway consults it: per issuing CA (named by the SHA-256
 * fingerprint of its certificate, so equal serials from two CAs never mix), a
 * set of revoked serials (lowercase hex of the positive value). Loaded once,
 * then followed: each refresh reports the serials newly revoked so the gateway
 * can close their live connections.
 *
 * Each set is a SerialSet (serial-set.ts): 1,000,000 serials in about 18 MiB
 * of array buffers, loaded from a CRL without a string per entry
 * (bench/gateway.ts measures time and memory).
 */
export interface RevocationStatus {
  source: string;
  /** Entries currently known revoked. */
  entries: number;
  /** When the information was last refreshed successfully. */
  refreshedAt?: Date;
  /** The CRL's nextUpdate (CRL sources). */
  nextUpdate?: Date;
  /** True when the information is too old to rely on (past nextUpdate, or refreshes failing for too long). */
  stale: boolean;
  lastError?: string;
  /** CRL sources: locations whose last CRL was older than the one in force for its CA, so not applied (a lagging mirror, or a copy replayed on the way). */
  superseded?: { location: string; crlNumber?: string; thisUpdate: Date; inForce: { crlNumber?: string; thisUpdate: Date } }[];
  /** Store sources: how changes are learnt (push or poll), the cursor, the listening connection's last error. */
  feed?: Record<string, unknown>;
}

export type RevokedListener = (issuer: string, serials: readonly string[]) => void;

export interface RevocationSource {
  readonly name: string;
  /** First load; throws when nothing usable can be loaded (fail at start-up). */
  start(): Promise<void>;
  isRevoked(issuer: string, serialHex: string): boolean;
  status(now: Date): RevocationStatus;
  onRevoked(listener: RevokedListener): void;
  close(): void;
}

/** A source that re-reads its whole input every interval (CRLs). */
abstract class PollingSource implements RevocationSource {
  abstract readonly name: string;
  protected readonly revoked = new Map<string, SerialSet>();
  #listeners: RevokedListener[] = [];
  #timer: NodeJS.Timeout | undefined;
  protected refreshedAt: Date | undefined;
  protected lastError: string | undefined;

  constructor(protected readonly intervalMs: number) {}

  protected abstract refresh(): Promise<void>;

  async start(): Promise<void> {
    await this.refresh();
    this.refreshedAt = new Date();
    const tick = async () => {
      try {
        await this.refresh();
        this.refreshedAt = new Date();
        this.lastError = undefined;
      } catch (e) {
        this.lastError = e instanceof Error ? e.message : String(e);
      }
      if (this.#timer) this.#timer = setTimeout(tick, this.intervalMs).unref();
    };
    this.#timer = setTimeout(tick, this.intervalMs).unref();
  }

  isRevoked(issuer: string, serialHex: string): boolean {
    return this.revoked.get(issuer)?.has(serialHex) ?? false;
  }

  onRevoked(listener: RevokedListener): void {
    this.#listeners.push(listener);
  }

  /** Replaces an issuer's set; tells listeners about the serials that are new (only on a refresh: the first load reports none). */
  protected replace(issuer: string, next: SerialSet): void {
    const before = this.revoked.get(issuer);
    const fresh = before ? next.missingFrom(before) : [];
    this.revoked.set(issuer, next);
    if (fresh.length) for (const l of this.#listeners) l(issuer, fresh);
  }

  protected count(): number {
    let n = 0;
    for (const s of this.revoked.values()) n += s.size;
    return n;
  }

  abstract status(now: Date): RevocationStatus;

  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/**
 * Revocations straight from the CA's store (a gateway beside the CA, or any
 * gateway given the PostgreSQL URL), through the store's status feed: the
 * full set once, then the changes after the store's change sequence number
 * (status-feed.ts), so no clock, the gateway's or the revoking host's,
 * decides what is new. Stale when the feed has not been read for staleAfterMs.
 */
export class StoreRevocationSource implements RevocationSource {
  readonly name = 'store';
  constructor(
    private readonly feed: StoreStatusFeed,
    /** Fingerprint (SHA-256, as X509Certificate.fingerprint256) of the issuing CA the store's serials belong to. */
    private readonly issuer: string,
    /** Reads failing this long make the information stale. */
    private readonly staleAfterMs = 30_000,
  ) {}

  start(): Promise<void> {
    return this.feed.start();
  }

  isRevoked(issuer: string, serialHex: string): boolean {
    return issuer === this.issuer && this.feed.isRevoked(serialHex);
  }

  onRevoked(listener: RevokedListener): void {
    this.feed.onRevoked((serials) => listener(this.issuer, serials));
  }

  status(now: Date): RevocationStatus {
    const refreshedAt = this.feed.refreshedAt;
    const age = refreshedAt ? now.getTime() - refreshedAt.getTime() : Infinity;
    return {
      source: this.name,
      entries: this.feed.revokedCount(),
      ...(refreshedAt ? { refreshedAt } : {}),
      stale: age > this.staleAfterMs,
      ...(this.feed.lastError ? { lastError: this.feed.lastError } : {}),
      feed: this.feed.state(),
    };
  }

  close(): void {
    this.feed.close();
  }
}

export interface CrlLocation {
  /** A file path or an http(s) URL. */
  location: string;
}

/**
 * Revocations from CRL files or URLs, each verified against the trusted CA
 * that issued it (issuer name and signature) before it replaces the previous
 * one. Files are re-read when their size or mtime changes; URLs are fetched
 * every refresh with If-Modified-Since. A CRL past its nextUpdate is stale.
 *
 * A CA's lists only move forward: a CRL older than the one in force for its
 * CA (a lower cRLNumber, or, the same or no number, an earlier thisUpdate) is
 * never applied, whichever location it comes from. Otherwise anyone on the
 * path of a plain-http CRL could replay yesterday's list, still within its
 * nextUpdate, and bring a certificate revoked since back in; and of two
 * mirrors the one that changed last would win, not the newest. Such a
 * location is reported (`superseded`, until it delivers the newest list)
 * and counts as read; the CA's newest list decides, and its nextUpdate
 * whether the information is stale.
 */
export class CrlRevocationSource extends PollingSource {
  readonly name = 'crl';
  #seen = new Map<string, string>();
  /** The last verified list each location delivered, and its CA (fingerprint). */
  #delivered = new Map<string, { issuer: string; list: CrlInForce }>();
  /** The list in force per CA (fingerprint): the newest verified one seen. */
  #inForce = new Map<string, CrlInForce>();
  constructor(
    private readonly locations: readonly string[],
    /** The trusted CAs a CRL may come from. */
    private readonly issuers: readonly X509Certificate[],
    intervalMs = 1000,
    private readonly fetchTimeoutMs = 10_000,
  ) {
    super(intervalMs);
  }

  protected async refresh(): Promise<void> {
    const errors: string[] = [];
    for (const loc of this.locations) {
      try {
        const der = await this.#read(loc);
        if (der) this.load(loc, der);
      } catch (e) {
        errors.push(`${loc}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    if (errors.length) throw new Error(errors.join('; '));
  }

  async #read(loc: string): Promise<Buffer | undefined> {
    if (/^https?:\/\//.test(loc)) {
      const headers: Record<string, string> = {};
      const seen = this.#seen.get(loc);
      if (seen) headers['if-modified-since'] = seen;
      const res = await fetch(loc, { headers, signal: AbortSignal.timeout(this.fetchTimeoutMs) });
      if (res.status === 304) return undefined;
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const body = Buffer.from(await res.arrayBuffer());
      this.#seen.set(loc, res.headers.get('last-modified') ?? '');
      return body;
    }
    const st = await stat(loc);
    const tag = `${st.size}:${st.mtimeMs}`;
    if (this.#seen.get(loc) === tag) return undefined;
    const data = await readFile(loc);
    this.#seen.set(loc, tag);
    return data;
  }

  /** Verifies and loads one CRL (DER or PEM). Throws, keeping the previous set, when it is not acceptable. */
  load(loc: string, data: Buffer): void {
    const text = data.subarray(0, 64).toString('latin1');
    const der = text.includes('-----BEGIN') ? pemBody(data.toString('latin1')) : data;
    const serials = new SerialSet();
    const summary = parseCrlSummary(der, { onSerial: (bytes, start, end) => void serials.addBytes(bytes, start, end) });
    const issuer = this.issuers.find((c) => subjectMatches(c, summary.issuer));
    if (!issuer) throw new Error('the CRL is not from a trusted CA (no trust anchor has its issuer name)');
    verifyCrlSignature(der, issuer.publicKey);
    const list: CrlInForce = { crlNumber: summary.crlNumber, thisUpdate: summary.thisUpdate, nextUpdate: summary.nextUpdate };
    this.#delivered.set(loc, { issuer: issuer.fingerprint256, list });
    const held = this.#inForce.get(issuer.fingerprint256);
    if (held && olderCrl(list, held)) return;
    this.#inForce.set(issuer.fingerprint256, list);
    serials.trim();
    this.replace(issuer.fingerprint256, serials);
  }

  status(now: Date): RevocationStatus {
    // The earliest nextUpdate of the lists in force; a list without one is never fresh.
    const dates = [...this.#inForce.values()].map((c) => c.nextUpdate);
    const next = dates.some((d) => d === undefined) ? undefined : (dates as Date[]).sort((a, b) => a.getTime() - b.getTime())[0];
    const superseded: NonNullable<RevocationStatus['superseded']> = [];
    for (const [location, { issuer, list }] of this.#delivered) {
      const held = this.#inForce.get(issuer);
      if (held && olderCrl(list, held)) superseded.push({ location, ...numberText(list), thisUpdate: list.thisUpdate, inForce: { ...numberText(held), thisUpdate: held.thisUpdate } });
    }
    return {
      source: this.name,
      entries: this.count(),
      ...(this.refreshedAt ? { refreshedAt: this.refreshedAt } : {}),
      ...(next ? { nextUpdate: next } : {}),
      stale: !next || next.getTime() < now.getTime() || this.#delivered.size < this.locations.length,
      ...(this.lastError ? { lastError: this.lastError } : {}),
      ...(superseded.length ? { superseded } : {}),
    };
  }
}

interface CrlInForce {
  crlNumber: bigint | undefined;
  thisUpdate: Date;
  nextUpdate: Date | undefined;
}

/** Whether `a` is an older list of the same CA than `b`: a lower cRLNumber; with the same number, or without numbers to compare, an earlier thisUpdate. */
function olderCrl(a: CrlInForce, b: CrlInForce): boolean {
  if (a.crlNumber !== undefined && b.crlNumber !== undefined && a.crlNumber !== b.crlNumber) return a.crlNumber < b.crlNumber;
  return a.thisUpdate.getTime() < b.thisUpdate.getTime();
}

function numberText(c: CrlInForce): { crlNumber?: string } {
  return c.crlNumber === undefined ? {} : { crlNumber: c.crlNumber.toString() };
}

function pemBody(text: string): Buffer {
  const m = /-----BEGIN X509 CRL-----([\s\S]*?)-----END X509 CRL-----/.exec(text);
  if (!m) throw new Error('PEM without an "X509 CRL" block');
  return Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
}

/** Byte-exact issuer Name comparison (RFC 5280 §7.1 allows it for names we issue). */
function subjectMatches(cert: X509Certificate, issuerNameDer: Buffer): boolean {
  return subjectDerOf(cert).equals(issuerNameDer);
}

const subjectCache = new WeakMap<X509Certificate, Buffer>();
function subjectDerOf(cert: X509Certificate): Buffer {
  let s = subjectCache.get(cert);
  if (!s) {
    s = subjectNameDer(cert.raw);
    subjectCache.set(cert, s);
  }
  return s;
}
