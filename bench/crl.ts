/**
 * CRL benchmark: buildCrl against `openssl ca -gencrl` on the same revoked
 * entries. Run `npx tsc -p tsconfig.json && node dist/bench/crl.js`; prints one
 * JSON document. `main()` returns the same document for bench/run.ts.
 *
 * For each N (100,000 and 1,000,000) and each of "every entry has a reason" /
 * "no reasons": random 9-byte serials in sekisho's shape (first byte
 * 0x01..0x7f), random revocation dates in the past year. Our time is the
 * median of a few buildCrl runs (validation, encoding and the ECDSA P-256
 * signature; not the making of the entry objects). openssl's time is one
 * `openssl ca -gencrl` run, which also reads index.txt and writes PEM; it is
 * killed after a timeout and then reported as not finished.
 */
import { spawnSync } from 'node:child_process';
import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate, SubjectKeyIdentifier, id_ce_subjectKeyIdentifier } from '@peculiar/asn1-x509';
import { buildCrl, parseCrlSummary, type CrlInput, type RevokedEntry } from '../src/pki/crl.js';
import { TAG, expectTlv, readTlv } from '../src/pki/der.js';
import type { RevocationReason } from '../src/pki/revocation-reason.js';
import { SoftwareSigner } from '../src/pki/signer.js';

export interface CrlBenchOptions {
  sizes?: number[];
  /** Kill `openssl ca -gencrl` after this long (default 120 s, or CRL_BENCH_OPENSSL_TIMEOUT_S). */
  opensslTimeoutSeconds?: number;
}

export interface CrlBenchResult {
  entries: number;
  withReasons: boolean;
  /** Median wall time of buildCrl. */
  seconds: number;
  runs: number[];
  bytes: number;
  bytesPerEntry: number;
  /** `openssl crl -verify -CAfile ca.pem` on our CRL. */
  opensslVerify: 'verify OK' | string;
  openssl: {
    seconds: number | null;
    finished: boolean;
    /** DER size of openssl's CRL (its PEM output decoded), when it finished. */
    bytes?: number;
    bytesPerEntry?: number;
    /** Its revokedCertificates elements are byte-for-byte ours (compared as sets). */
    sameEntries?: boolean;
    note?: string;
  };
  /** openssl seconds / our seconds; when openssl did not finish, null (see ratioAtLeast). */
  ratio: number | null;
  ratioAtLeast?: number;
}

export interface CrlBenchReport {
  bench: 'crl';
  node: string;
  openssl: string;
  cpus: number;
  key: 'ecdsa-p256';
  results: CrlBenchResult[];
}

/** Reasons `openssl ca` knows without a hold instruction, so both sides write the same entries. */
const REASONS: RevocationReason[] = ['keyCompromise', 'cACompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation'];
/** openssl ca's spelling in index.txt (apps/ca.c crl_reasons). */
const OPENSSL_REASON: Partial<Record<RevocationReason, string>> = {
  keyCompromise: 'keyCompromise',
  cACompromise: 'CACompromise',
  affiliationChanged: 'affiliationChanged',
  superseded: 'superseded',
  cessationOfOperation: 'cessationOfOperation',
};

const DAY_MS = 86_400_000;

function sh(cmd: string, args: string[], timeoutMs?: number) {
  const started = performance.now();
  const r = spawnSync(cmd, args, { maxBuffer: 64 * 1024 * 1024, ...(timeoutMs === undefined ? {} : { timeout: timeoutMs, killSignal: 'SIGKILL' as const }) });
  const seconds = (performance.now() - started) / 1000;
  return { status: r.status, signal: r.signal, error: r.error, seconds, out: `${r.stdout?.toString() ?? ''}${r.stderr?.toString() ?? ''}` };
}

function mustSh(cmd: string, args: string[]): string {
  const r = sh(cmd, args);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.out}`);
  return r.out;
}

interface BenchCa {
  dir: string;
  caPem: string;
  config: string;
  signer: SoftwareSigner;
  issuer: Buffer;
  ski: Buffer;
}

function makeCa(dir: string): BenchCa {
  const caPem = join(dir, 'ca.pem');
  const caKey = join(dir, 'ca.key');
  const reqCnf = join(dir, 'req.cnf');
  writeFileSync(reqCnf, '[ req ]\ndistinguished_name = dn\nprompt = no\n[ dn ]\nCN = unused\n');
  mustSh('openssl', [
    'req', '-config', reqCnf, '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', caKey, '-out', caPem, '-days', '3650', '-subj', '/C=JP/O=Sekisho Bench/CN=Bench CA',
    '-addext', 'subjectKeyIdentifier=hash', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-addext', 'basicConstraints=critical,CA:true',
  ]);
  const config = join(dir, 'ca.cnf');
  writeFileSync(
    config,
    [
      '[ ca ]',
      'default_ca = bench_ca',
      '[ bench_ca ]',
      `dir = ${dir}`,
      'database = $dir/index.txt',
      'crlnumber = $dir/crlnumber',
      'certificate = $dir/ca.pem',
      'private_key = $dir/ca.key',
      'new_certs_dir = $dir',
      'serial = $dir/serial',
      'default_md = sha256',
      'default_crl_days = 7',
      'unique_subject = no',
      'policy = bench_policy',
      'crl_extensions = bench_crl_ext',
      '[ bench_policy ]',
      'commonName = supplied',
      '[ bench_crl_ext ]',
      'authorityKeyIdentifier = keyid:always',
      '',
    ].join('\n'),
  );
  const der = new X509Certificate(readFileSync(caPem)).raw;
  const cert = AsnConvert.parse(der, Certificate);
  const skiExt = cert.tbsCertificate.extensions?.find((e) => e.extnID === id_ce_subjectKeyIdentifier);
  if (!skiExt) throw new Error('the bench CA has no subjectKeyIdentifier');
  return {
    dir,
    caPem,
    config,
    signer: new SoftwareSigner(createPrivateKey(readFileSync(caKey))),
    issuer: Buffer.from(AsnConvert.serialize(cert.tbsCertificate.subject)),
    ski: Buffer.from(AsnConvert.parse(skiExt.extnValue, SubjectKeyIdentifier).buffer),
  };
}

/** N distinct serials in sekisho's shape and whole-second revocation dates within the past year. */
function makeSerials(n: number, now: number): { serials: Buffer[]; dates: Date[] } {
  const serials: Buffer[] = [];
  const seen = new Set<string>();
  const dates: Date[] = [];
  while (serials.length < n) {
    const pool = randomBytes(9 * (n - serials.length));
    for (let off = 0; off < pool.length; off += 9) {
      const s = pool.subarray(off, off + 9);
      s[0] = ((s[0] as number) % 0x7f) + 1;
      const key = s.toString('hex');
      if (seen.has(key)) continue;
      seen.add(key);
      serials.push(s);
      dates.push(new Date(Math.floor((now - Math.random() * 365 * DAY_MS) / 1000) * 1000));
    }
  }
  return { serials, dates };
}

function entriesFor(serials: Buffer[], dates: Date[], withReasons: boolean): RevokedEntry[] {
  return serials.map((serial, i) =>
    withReasons ? { serial, revokedAt: dates[i] as Date, reason: REASONS[i % REASONS.length] as RevocationReason } : { serial, revokedAt: dates[i] as Date },
  );
}

/** `YYMMDDHHMMSSZ`, as index.txt wants. */
function indexTime(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
}

function writeIndex(ca: BenchCa, entries: RevokedEntry[], now: number): void {
  const expiry = indexTime(new Date(now + 2 * 365 * DAY_MS));
  const lines = new Array<string>(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as RevokedEntry;
    const reason = e.reason === undefined ? '' : `,${OPENSSL_REASON[e.reason]}`;
    lines[i] = `R\t${expiry}\t${indexTime(e.revokedAt)}${reason}\t${e.serial.toString('hex').toUpperCase()}\tunknown\t/CN=x`;
  }
  writeFileSync(join(ca.dir, 'index.txt'), lines.join('\n') + '\n');
  writeFileSync(join(ca.dir, 'index.txt.attr'), 'unique_subject = no\n');
  writeFileSync(join(ca.dir, 'crlnumber'), '1000\n');
  rmSync(join(ca.dir, 'openssl-crl.pem'), { force: true });
}

function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

/** The revokedCertificates elements of a CRL, each as its DER bytes. */
function entryTlvs(der: Buffer): Buffer[] {
  const tbs = expectTlv(der, expectTlv(der, 0, TAG.SEQUENCE, 'CertificateList').start, TAG.SEQUENCE, 'TBSCertList');
  const out: Buffer[] = [];
  for (let off = tbs.start; off < tbs.end; ) {
    const t = readTlv(der, off, tbs.end);
    // version, signature, issuer, thisUpdate, nextUpdate precede; revokedCertificates is the SEQUENCE after the times.
    if (t.tag === TAG.SEQUENCE && off > tbs.start && der[t.start] === TAG.SEQUENCE && der[readTlv(der, t.start, t.end).start] === TAG.INTEGER) {
      for (let e = t.start; e < t.end; ) {
        const entry = readTlv(der, e, t.end);
        out.push(der.subarray(entry.offset, entry.end));
        e = entry.end;
      }
    }
    off = t.end;
  }
  return out;
}

/** Whether two CRLs list the same entries byte-for-byte, in any order (openssl ca sorts by serial). */
function sameEntrySet(a: Buffer, b: Buffer): boolean {
  const x = entryTlvs(a).sort(Buffer.compare);
  const y = entryTlvs(b).sort(Buffer.compare);
  return x.length > 0 && x.length === y.length && x.every((e, i) => e.equals(y[i] as Buffer));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits;

async function timeOurs(input: CrlInput, reps: number): Promise<{ der: Buffer; runs: number[] }> {
  const runs: number[] = [];
  let der: Buffer = Buffer.alloc(0);
  for (let i = 0; i < reps; i++) {
    const started = performance.now();
    der = await buildCrl(input);
    runs.push((performance.now() - started) / 1000);
  }
  return { der, runs };
}

export async function main(options: CrlBenchOptions = {}): Promise<CrlBenchReport> {
  const sizes = options.sizes ?? [100_000, 1_000_000];
  const timeoutS = options.opensslTimeoutSeconds ?? Number(process.env.CRL_BENCH_OPENSSL_TIMEOUT_S ?? 120);
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'sekisho-crl-bench-')));
  try {
    const ca = makeCa(dir);
    const now = Date.now();
    const base = { issuer: ca.issuer, signer: ca.signer, authorityKeyIdentifier: ca.ski, thisUpdate: new Date(now), nextUpdate: new Date(now + 7 * DAY_MS) };
    // Warm the JIT on a small list first.
    const warm = makeSerials(20_000, now);
    await timeOurs({ ...base, crlNumber: 1n, entries: entriesFor(warm.serials, warm.dates, true) }, 3);

    const results: CrlBenchResult[] = [];
    let crlNumber = 2n;
    for (const n of sizes) {
      const { serials, dates } = makeSerials(n, now);
      for (const withReasons of [true, false]) {
        const entries = entriesFor(serials, dates, withReasons);
        const { der, runs } = await timeOurs({ ...base, crlNumber: crlNumber++, entries }, n >= 1_000_000 ? 3 : 5);
        const seconds = median(runs);

        const ours = join(dir, 'ours.der');
        writeFileSync(ours, der);
        const verify = sh('openssl', ['crl', '-inform', 'DER', '-in', ours, '-noout', '-verify', '-CAfile', ca.caPem]);
        const opensslVerify = verify.status === 0 && /verify OK/.test(verify.out) ? 'verify OK' : `FAILED: ${verify.out.trim()}`;
        const ourCount = parseCrlSummary(der).count;
        if (ourCount !== n) throw new Error(`our CRL lists ${ourCount} entries, expected ${n}`);

        writeIndex(ca, entries, now);
        const out = join(dir, 'openssl-crl.pem');
        const o = sh('openssl', ['ca', '-config', ca.config, '-gencrl', '-batch', '-out', out], timeoutS * 1000);
        const result: CrlBenchResult = {
          entries: n,
          withReasons,
          seconds: round(seconds, 4),
          runs: runs.map((r) => round(r, 4)),
          bytes: der.length,
          bytesPerEntry: round(der.length / n, 2),
          opensslVerify,
          openssl: { seconds: null, finished: false },
          ratio: null,
        };
        if (o.status === 0) {
          const theirs = pemToDer(readFileSync(out, 'latin1'));
          const theirCount = parseCrlSummary(theirs).count;
          result.openssl = {
            seconds: round(o.seconds),
            finished: true,
            bytes: theirs.length,
            bytesPerEntry: round(theirs.length / n, 2),
            sameEntries: sameEntrySet(der, theirs),
          };
          if (theirCount !== n) result.openssl.note = `openssl's CRL lists ${theirCount} entries, expected ${n}`;
          result.ratio = round(o.seconds / seconds, 1);
        } else if (o.signal === 'SIGKILL' || (o.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT') {
          result.openssl = { seconds: null, finished: false, note: `did not finish in ${timeoutS}s` };
          result.ratioAtLeast = round(timeoutS / seconds, 1);
        } else {
          result.openssl = { seconds: null, finished: false, note: `openssl ca failed (${o.status ?? o.signal}): ${o.out.trim().slice(0, 500)}` };
        }
        results.push(result);
        process.stderr.write(`crl bench: ${n} entries, reasons ${withReasons}: ours ${result.seconds}s, openssl ${result.openssl.seconds ?? result.openssl.note}\n`);
      }
    }
    return {
      bench: 'crl',
      node: process.version,
      openssl: mustSh('openssl', ['version']).trim(),
      cpus: availableParallelism(),
      key: 'ecdsa-p256',
      results,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href;
if (invokedDirectly) {
  main().then(
    (report) => process.stdout.write(`${JSON.stringify(report, null, 2)}\n`),
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
