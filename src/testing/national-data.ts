/**
 * A national-size store for load tests and benchmarks (bench/national.ts,
 * `node dist/bench/national-data.js`): facilities with valid 医療機関番号
 * spread over the 47 prefectures by population, and certificates with a
 * renewal history: superseded ones (revoked with reason superseded once their
 * overlap ended, or still inside it), revoked ones with RFC 5280 reasons
 * spread over their lifetimes, expired ones, and current ones.
 *
 * Rows go straight in through SQL in big transactions (SQLite: multi-row
 * INSERTs, 20,000 rows a transaction; PostgreSQL: INSERT … SELECT FROM
 * unnest(arrays), 10,000 rows a statement), each batch taking its change
 * sequence numbers in the same transaction, as FacilityRepository.add and
 * CertificateRepository.revoke do, so a running gateway follows them.
 *
 * A certificate row's DER and fingerprint come from a small pool of real
 * certificates signed by the CA (the caller issues them): the row's serial,
 * subject, dates, status and key hash (spki_sha256, unique like real keys)
 * are its own, the DER bytes are a pool member's. What is measured at scale reads serials, status, dates and reasons
 * (gateway feed, CRL, cert list); the DER is carried at its real size only.
 * Everything is derived from the row index and a seed, so a run is
 * reproducible and needs no state beyond the counters.
 */
import { createHash } from 'node:crypto';
import type { CertificateAuthority } from '../ca/index.js';
import { fingerprint, spkiSha256 } from '../pki/index.js';
import { checkDigit } from '../policy/index.js';
import type { Database, SqlExecutor } from '../store/index.js';

export interface PoolCertificate {
  der: Buffer;
  fingerprintSha256: string;
  spkiSha256: string;
}

export interface NationalDataOptions {
  facilities: number;
  certificates: number;
  /** Real certificates whose DER the generated rows carry (at least one). */
  pool: readonly PoolCertificate[];
  /** The "present" of the data set (default now). */
  now?: Date;
  seed?: number;
  /** Called after each batch with the rows written so far. */
  progress?: (what: 'facilities' | 'certificates', done: number, total: number) => void;
}

export interface NationalDataSummary {
  facilities: { total: number; suspended: number; byTable: Record<string, number> };
  certificates: {
    total: number;
    issuedValid: number;
    expired: number;
    /** Superseded and still in their overlap (revoke_due_at ahead). */
    supersededPending: number;
    revoked: number;
    /** Revoked and not yet expired: what a CRL lists. */
    revokedUnexpired: number;
    revokedByReason: Record<string, number>;
    devices: number;
  };
  seconds: { facilities: number; certificates: number };
  rowsPerSecond: number;
}

const DAY = 86_400_000;
const VALIDITY_DAYS = 730;
/** Days between a facility's renewals (its certificates overlap by the rest of the 730). */
const RENEWAL_DAYS = 650;
const SUPERSEDE_OVERLAP_DAYS = 14;
const SUPERSEDED_SHARE = 0.6;
const REVOKED_SHARE = 0.035;
const DEVICE_SHARE = 0.7;
const SUSPENDED_SHARE = 0.01;

/** RFC 5280 reason codes and their shares among revocations that are not renewals. */
const REASONS: readonly [code: number, name: string, share: number][] = [
  [5, 'cessationOfOperation', 0.38],
  [3, 'affiliationChanged', 0.22],
  [0, 'unspecified', 0.18],
  [1, 'keyCompromise', 0.14],
  [9, 'privilegeWithdrawn', 0.05],
  [6, 'certificateHold', 0.03],
];
export const REASON_NAMES: Record<number, string> = { 4: 'superseded', ...Object.fromEntries(REASONS.map(([c, n]) => [c, n])) };

/** Prefectures (JIS X 0401 order, code = index + 1) and their populations in 10,000s (2020 census, rounded). */
const PREFECTURES: readonly [string, number][] = [
  ['北海道', 522], ['青森県', 124], ['岩手県', 121], ['宮城県', 230], ['秋田県', 96], ['山形県', 107], ['福島県', 183], ['茨城県', 287],
  ['栃木県', 193], ['群馬県', 194], ['埼玉県', 734], ['千葉県', 628], ['東京都', 1405], ['神奈川県', 924], ['新潟県', 220], ['富山県', 103],
  ['石川県', 113], ['福井県', 77], ['山梨県', 81], ['長野県', 205], ['岐阜県', 198], ['静岡県', 363], ['愛知県', 754], ['三重県', 177],
  ['滋賀県', 141], ['京都府', 258], ['大阪府', 884], ['兵庫県', 547], ['奈良県', 133], ['和歌山県', 92], ['鳥取県', 55], ['島根県', 67],
  ['岡山県', 189], ['広島県', 280], ['山口県', 134], ['徳島県', 72], ['香川県', 95], ['愛媛県', 133], ['高知県', 69], ['福岡県', 513],
  ['佐賀県', 81], ['長崎県', 131], ['熊本県', 174], ['大分県', 113], ['宮崎県', 107], ['鹿児島県', 159], ['沖縄県', 147],
];

/** 点数表 (third digit) with its share of facilities and the name endings used for it. */
const TABLES: readonly [table: string, share: number, endings: readonly string[]][] = [
  ['1', 0.43, ['内科クリニック', '医院', '診療所', '整形外科', '小児科医院', '眼科', '耳鼻咽喉科', '皮膚科クリニック', '循環器内科', '病院', '記念病院', '総合病院']],
  ['3', 0.28, ['歯科医院', '歯科クリニック', 'デンタルクリニック', '歯科']],
  ['4', 0.25, ['薬局', '調剤薬局', 'ファーマシー', '薬局 駅前店']],
  ['6', 0.04, ['訪問看護ステーション']],
];
const PREFIXES = [
  '佐藤', '鈴木', '高橋', '田中', '伊藤', '渡辺', '山本', '中村', '小林', '加藤', '吉田', '山田', '佐々木', '山口', '松本', '井上', '木村', '林', '斎藤', '清水',
  'さくら', 'みどり', 'ひまわり', 'あおば', 'すずらん', 'こばと', '中央', '駅前', '本町', '緑が丘', '青葉', '若葉', '東', '西', '南', '北', 'はなみずき', 'やまびこ', 'いずみ', 'ひかり',
];
const DEVICES = ['受付端末', '電子カルテ', 'レセコン', '検査装置', '調剤システム', 'オンライン資格確認端末'];

/** A deterministic uniform number in [0, 1) from a row index, a salt and the seed (splitmix32-style mixing). */
function unit(i: number, salt: number, seed: number): number {
  let x = (Math.imul(i + 1, 0x9e3779b1) ^ Math.imul(salt + 1, 0x85ebca6b) ^ seed) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x21f0aaad) >>> 0;
  x = Math.imul(x ^ (x >>> 15), 0x735a2d97) >>> 0;
  return ((x ^ (x >>> 15)) >>> 0) / 4294967296;
}

function pick<T>(items: readonly T[], weight: (t: T) => number, u: number): T {
  const total = items.reduce((a, t) => a + weight(t), 0);
  let acc = 0;
  for (const t of items) {
    acc += weight(t) / total;
    if (u < acc) return t;
  }
  return items[items.length - 1]!;
}

const MASK64 = (1n << 64n) - 1n;
/**
 * The serial of generated row i: 9 bytes, first byte 0x5e (generated; real
 * issuance draws 0x01..0x7f at random, so a clash is as unlikely as between
 * two real serials), then i times an odd constant mod 2^64 (a bijection:
 * unique, scattered like random serials).
 */
export function generatedSerial(i: number, seed = 1): string {
  return `5e${((BigInt(i + 1) * 0x9e3779b97f4a7c15n + BigInt(seed) * 0x632be59bd9b4e019n) & MASK64).toString(16).padStart(16, '0')}`;
}

export interface GeneratedFacility {
  number: string;
  name: string;
  address: string;
  contact: string;
  status: 'active' | 'suspended';
}

/** The facilities, all of them (230,000 is a few tens of MB of strings at most). */
export function generateFacilities(count: number, seed = 1): GeneratedFacility[] {
  const counters = new Map<string, number>();
  const out: GeneratedFacility[] = [];
  for (let j = 0; j < count; j++) {
    const p = pick(PREFECTURES.map((x, k) => [k, x[1]] as const), (x) => x[1], unit(j, 1, seed))[0];
    const [table, , endings] = pick(TABLES, (t) => t[1], unit(j, 2, seed));
    const pref = String(p + 1).padStart(2, '0');
    const key = pref + table;
    const n = counters.get(key) ?? 0;
    counters.set(key, n + 1);
    if (n >= 600_000) throw new RangeError(`more than 600,000 facilities in prefecture ${pref}, table ${table}`);
    // 郡市区番号 01–60, then a 4-digit number: (district, number) ↔ n is one-to-one.
    const nine = `${pref}${table}${String(1 + (n % 60)).padStart(2, '0')}${String(Math.floor(n / 60)).padStart(4, '0')}`;
    const number = nine + checkDigit(nine);
    const prefix = PREFIXES[Math.floor(unit(j, 3, seed) * PREFIXES.length)]!;
    const ending = endings[Math.floor(unit(j, 4, seed) * endings.length)]!;
    out.push({
      number,
      name: `${prefix}${ending}`,
      address: `${PREFECTURES[p]![0]}${String(1 + (n % 60)).padStart(2, '0')}区${1 + Math.floor(unit(j, 5, seed) * 30)}-${1 + Math.floor(unit(j, 6, seed) * 20)}`,
      contact: `0${1 + Math.floor(unit(j, 7, seed) * 9)}-${String(Math.floor(unit(j, 8, seed) * 10000)).padStart(4, '0')}-${String(Math.floor(unit(j, 9, seed) * 10000)).padStart(4, '0')}`,
      status: unit(j, 10, seed) < SUSPENDED_SHARE ? 'suspended' : 'active',
    });
  }
  return out;
}

interface CertRow {
  serial: string;
  status: 'issued' | 'revoked';
  profile: 'facility' | 'device';
  facility: string;
  subject: string;
  notBefore: number;
  notAfter: number;
  revokedAt: number | null;
  reason: number | null;
  renewedFrom: string | null;
  supersededBy: string | null;
  supersededAt: number | null;
  revokeDueAt: number | null;
  pool: number;
  /** Whether it takes a change sequence number (revoked, or superseded with a due time). */
  followed: boolean;
}

/**
 * Certificate i belongs to facility i mod F and is that facility's
 * generation g = floor(i / F) of n. The newest (g = n-1) is its current
 * facility certificate, issued 1–330 days ago; the one before (g = n-2) its
 * previous facility certificate, issued RENEWAL_DAYS earlier and, with
 * SUPERSEDED_SHARE, renewed by the newest: superseded when that was issued
 * and revoked (superseded) 14 days later, or still due if that is ahead.
 * Older generations are device certificates issued within the last two
 * years with DEVICE_SHARE, else facility certificates of earlier renewals,
 * long expired. Of those not renewed, REVOKED_SHARE were revoked for a reason
 * at a uniform time within their lifetime so far.
 */
function certificateRow(i: number, facilities: readonly GeneratedFacility[], total: number, now: number, seed: number, poolSize: number): CertRow {
  const F = facilities.length;
  const f = i % F;
  const gen = Math.floor(i / F);
  const newest = Math.floor((total - 1 - f) / F);
  const age = (k: number, back: number) => (back + 1 + Math.floor(unit(k, 11, seed) * 330)) * DAY + Math.floor(unit(k, 12, seed) * DAY);
  const newestIssued = now - age(f + newest * F, 0);
  const renewed = (k: number) => Math.floor(k / F) === newest - 1 && unit(k, 14, seed) < SUPERSEDED_SHARE;
  const device = gen < newest - 1 && unit(i, 13, seed) < DEVICE_SHARE;
  const notBefore =
    gen === newest ? newestIssued
    : gen === newest - 1 ? newestIssued - RENEWAL_DAYS * DAY - Math.floor(unit(i, 11, seed) * 30 * DAY)
    : device ? now - Math.floor(unit(i, 11, seed) * 700 * DAY) - DAY
    : now - age(i, (newest - gen) * RENEWAL_DAYS);
  const notAfter = notBefore + VALIDITY_DAYS * DAY;
  const fac = facilities[f]!;
  const row: CertRow = {
    serial: generatedSerial(i, seed),
    status: 'issued',
    profile: device ? 'device' : 'facility',
    facility: fac.number,
    subject: device
      ? `C=JP, O=${fac.name}, OU=${fac.number}, CN=${DEVICES[Math.floor(unit(i, 15, seed) * DEVICES.length)]}${1 + Math.floor(unit(i, 16, seed) * 9)}`
      : `C=JP, O=${fac.name}, CN=${fac.number}`,
    notBefore,
    notAfter,
    revokedAt: null,
    reason: null,
    renewedFrom: gen === newest && gen >= 1 && renewed(i - F) ? generatedSerial(i - F, seed) : null,
    supersededBy: null,
    supersededAt: null,
    revokeDueAt: null,
    pool: i % poolSize,
    followed: false,
  };
  if (renewed(i)) {
    const due = newestIssued + SUPERSEDE_OVERLAP_DAYS * DAY;
    row.supersededBy = generatedSerial(i + F, seed);
    row.supersededAt = newestIssued;
    row.revokeDueAt = due;
    row.followed = true;
    if (due <= now) {
      row.status = 'revoked';
      row.revokedAt = due;
      row.reason = 4;
    }
  } else if (unit(i, 17, seed) < REVOKED_SHARE) {
    const end = Math.min(now, notAfter);
    row.status = 'revoked';
    row.revokedAt = notBefore + Math.floor(unit(i, 18, seed) * (end - notBefore));
    row.reason = pick(REASONS, (r) => r[2], unit(i, 19, seed))[0];
    row.followed = true;
  }
  return row;
}

/**
 * A key hash of the row's own (as unique as real keys), not the pool member's:
 * the spki index (renewal and EST lookups by key) keeps its real selectivity.
 */
const rowSpki = (serial: string) => createHash('sha256').update(`generated-key:${serial}`).digest('hex');

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** Takes `n` change sequence numbers in the caller's transaction; returns the first. */
async function takeSeqs(tx: SqlExecutor, n: number): Promise<number> {
  await tx.run('UPDATE change_counter SET seq = seq + ? WHERE id = 1', [n]);
  const r = await tx.get<{ seq: number | string }>('SELECT seq FROM change_counter WHERE id = 1');
  return Number(r?.seq ?? 0) - n + 1;
}

const FACILITY_COLUMNS = ['number', 'name', 'address', 'contact', 'status', 'created_at', 'updated_at', 'change_seq'] as const;
const FACILITY_TYPES = ['text', 'text', 'text', 'text', 'text', 'text', 'text', 'bigint'];
const CERT_COLUMNS = [
  'serial', 'status', 'profile', 'facility_number', 'subject', 'spki_sha256', 'not_before', 'not_after', 'reserved_at', 'issued_at', 'fingerprint_sha256',
  'der', 'revoked_at', 'revocation_reason', 'change_seq', 'renewed_from', 'superseded_by', 'superseded_at', 'revoke_due_at',
] as const;
const CERT_TYPES = ['text', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'bytea', 'text', 'integer', 'bigint', 'text', 'text', 'text', 'text'];

/** Inserts rows (arrays in `columns` order): SQLite as multi-row VALUES, PostgreSQL as one INSERT … SELECT FROM unnest. */
async function insertRows(tx: SqlExecutor, table: string, columns: readonly string[], types: readonly string[], rows: unknown[][]): Promise<void> {
  if (rows.length === 0) return;
  if (tx.dialect === 'postgres') {
    const arrays = columns.map((_, c) => rows.map((r) => r[c]));
    await tx.run(`INSERT INTO ${table} (${columns.join(', ')}) SELECT * FROM unnest(${types.map((t) => `?::${t}[]`).join(', ')})`, arrays);
    return;
  }
  // 19 columns × 500 rows = 9,500 variables, under SQLite's 32,766.
  const per = 500;
  const one = `(${columns.map(() => '?').join(', ')})`;
  for (let k = 0; k < rows.length; k += per) {
    const chunk = rows.slice(k, k + per);
    await tx.run(`INSERT INTO ${table} (${columns.join(', ')}) VALUES ${Array(chunk.length).fill(one).join(', ')}`, chunk.flat());
  }
}

/**
 * Writes the data set into an open, migrated store (normally a fresh CA's).
 * Facility numbers already registered are an error (the primary key says
 * so); certificate serials are the generated ones (generatedSerial).
 */
export async function generateNationalData(db: Database, o: NationalDataOptions): Promise<NationalDataSummary> {
  if (!(o.facilities >= 1) || !(o.certificates >= 0)) throw new RangeError('facilities must be at least 1 and certificates not negative');
  if (o.pool.length === 0) throw new RangeError('the certificate pool is empty');
  const seed = o.seed ?? 1;
  const now = (o.now ?? new Date()).getTime();
  const started = performance.now();
  const facilities = generateFacilities(o.facilities, seed);
  const byTable: Record<string, number> = {};
  let suspended = 0;
  const created = iso(now - 6 * 365 * DAY)!;
  const fBatch = (db.dialect === 'postgres' ? 10_000 : 20_000);
  for (let k = 0; k < facilities.length; k += fBatch) {
    const chunk = facilities.slice(k, k + fBatch);
    await db.transaction(async (tx) => {
      const first = await takeSeqs(tx, chunk.length);
      await insertRows(tx, 'facilities', FACILITY_COLUMNS, FACILITY_TYPES, chunk.map((f, n) => [f.number, f.name, f.address, f.contact, f.status, created, f.status === 'suspended' ? iso(now - 30 * DAY) : created, first + n]));
    });
    for (const f of chunk) {
      byTable[f.number[2]!] = (byTable[f.number[2]!] ?? 0) + 1;
      if (f.status === 'suspended') suspended++;
    }
    o.progress?.('facilities', Math.min(k + fBatch, facilities.length), facilities.length);
  }
  const facilitySeconds = (performance.now() - started) / 1000;

  const c = { issuedValid: 0, expired: 0, supersededPending: 0, revoked: 0, revokedUnexpired: 0, devices: 0 };
  const byReason: Record<string, number> = {};
  const cBatch = db.dialect === 'postgres' ? 10_000 : 20_000;
  const certStarted = performance.now();
  for (let k = 0; k < o.certificates; k += cBatch) {
    const end = Math.min(k + cBatch, o.certificates);
    const rows: CertRow[] = [];
    for (let i = k; i < end; i++) rows.push(certificateRow(i, facilities, o.certificates, now, seed, o.pool.length));
    const followed = rows.filter((r) => r.followed).length;
    await db.transaction(async (tx) => {
      let seq = followed ? await takeSeqs(tx, followed) : 0;
      await insertRows(
        tx,
        'certificates',
        CERT_COLUMNS,
        CERT_TYPES,
        rows.map((r) => {
          const p = o.pool[r.pool]!;
          return [
            r.serial, r.status, r.profile, r.facility, r.subject, rowSpki(r.serial), iso(r.notBefore), iso(r.notAfter), iso(r.notBefore), iso(r.notBefore), p.fingerprintSha256,
            p.der, iso(r.revokedAt), r.reason, r.followed ? seq++ : 0, r.renewedFrom, r.supersededBy, iso(r.supersededAt), iso(r.revokeDueAt),
          ];
        }),
      );
    });
    for (const r of rows) {
      if (r.profile === 'device') c.devices++;
      if (r.status === 'revoked') {
        c.revoked++;
        if (r.notAfter > now) c.revokedUnexpired++;
        const name = REASON_NAMES[r.reason!]!;
        byReason[name] = (byReason[name] ?? 0) + 1;
      } else if (r.notAfter <= now) c.expired++;
      else if (r.revokeDueAt !== null) c.supersededPending++;
      else c.issuedValid++;
    }
    o.progress?.('certificates', end, o.certificates);
  }
  const certSeconds = (performance.now() - certStarted) / 1000;
  const total = (performance.now() - started) / 1000;
  return {
    facilities: { total: facilities.length, suspended, byTable },
    certificates: { total: o.certificates, ...c, revokedByReason: byReason },
    seconds: { facilities: round(facilitySeconds), certificates: round(certSeconds) },
    rowsPerSecond: Math.round((facilities.length + o.certificates) / total),
  };
}

const round = (x: number) => Math.round(x * 1000) / 1000;

/** A facility number no generated facility has (district 99 never occurs): the pool's certificates belong to it. */
export const POOL_FACILITY = (() => {
  const nine = '476990000';
  return nine + checkDigit(nine);
})();

/**
 * Issues `n` real certificates (ECDSA P-256, keys discarded) through the CA's
 * ordinary issuance path, to a facility of their own, for generated rows to
 * carry. The CA must be unlocked.
 */
export async function certificatePool(ca: CertificateAuthority, n: number): Promise<PoolCertificate[]> {
  if (!(await ca.facility(POOL_FACILITY))) await ca.addFacility({ number: POOL_FACILITY, name: '負荷試験用 証明書プール' }, 'national-data');
  const out: PoolCertificate[] = [];
  for (let k = 0; k < n; k++) {
    const issued = await ca.issueWithNewKey({ via: 'national-data', actor: 'national-data', keyType: 'ecdsa-p256', profile: 'facility', facilityNumber: POOL_FACILITY });
    out.push({ der: issued.der, fingerprintSha256: fingerprint(issued.der), spkiSha256: spkiSha256(issued.view.spki) });
  }
  return out;
}
