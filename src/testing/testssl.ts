/**
 * testssl.sh as a second opinion: runs Debian's `testssl` (3.0.x; the binary
 * is `testssl`, upstream calls it `testssl.sh`) against a server with flat JSON
 * output and returns which protocol versions it found offered and which
 * suites it found accepted per version, as IANA names, so that the scanner's
 * protocol and suite findings can be compared with it.
 *
 * What it does, as observed with testssl 3.0.8 + OpenSSL 3.0.19 on bookworm:
 *  - `-p` tests SSLv2…TLS 1.3 with its own sockets (bash + /dev/tcp), so it
 *    sees versions the local OpenSSL cannot speak (SSLv2/SSLv3).
 *  - `-E` (--cipher-per-proto) tries every cipher it knows for each version,
 *    with OpenSSL for the ones OpenSSL implements and sockets for the rest,
 *    and reports ids `cipher-<proto>_x<hex>` (e.g. cipher-tls1_2_xc02b) whose
 *    finding reads "TLS 1.2   xc02b   ECDHE-ECDSA-AES128-GCM-SHA256   ECDH 253
 *    AESGCM 128   TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256". `-e`
 *    (--each-cipher) is the per-cipher test without the version (ids
 *    `cipher_x<hex>`), so `-p -E` is what the comparison needs. The list is
 *    ordered by encryption strength, not by the server's preference.
 *  - Client certificates: every probe of -p/-E stops at (or shortly after)
 *    the ServerHello, so a server that requires a client certificate is
 *    enumerated completely. Against nginx-compliant (ssl_verify_client on)
 *    testssl reports TLS 1.2 + 1.3 offered, SSLv2/SSLv3/TLS 1.0/1.1 not, and
 *    exactly the 5 ECDSA AEAD TLS 1.2 suites + the 5 TLS 1.3 suites
 *    configured, and even "Service detected: HTTP", because nginx completes
 *    the handshake without a certificate and answers HTTP 400. Against
 *    servers that refuse the handshake without a certificate (s_server
 *    -Verify 1, nginx with VerifyMode Require) the protocol and suite
 *    findings are just as complete; only the service detection gives up
 *    ("certificate-based authentication => skipping all HTTP checks") and
 *    testssl may exit with status 1. Nothing of -p/-E looks at client
 *    authentication: testssl 3.0 has no option to present a client
 *    certificate.
 *  - Duration: about 6-8 s of CPU per `-p -E` scan of a TLS 1.2+1.3 server
 *    (a TLS 1.1 server costs a little more). Wall clock on this 2-core
 *    machine: 10-17 s for one scan alone, 20-30 s each for two side by side,
 *    ~37 s each for three side by side while other builds ran. Startup alone
 *    (OpenSSL capability probing) takes a few seconds, so one run with both
 *    checks is cheaper than two runs.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isIP } from 'node:net';
import { hasCommand } from './peers.js';
import { tempDir } from './stores.js';
import { TLS_PROTOCOLS, type TlsProtocol } from './tls-servers.js';

export interface TestsslOptions {
  /** Kill testssl (and its openssl children) after this long; default 120 s. */
  timeoutMs?: number;
  /** The checks to run; default ['-p', '-E']. */
  checks?: string[];
  /** More arguments, e.g. ['--openssl-timeout', '5']. */
  extraArgs?: string[];
}

export interface TestsslResult {
  /** Versions testssl found offered (SSLv2 is not in the scanner's vocabulary: see `findings.SSLv2`). */
  protocols: Record<TlsProtocol, boolean>;
  /** IANA names of the suites testssl found accepted per version (-E), in testssl's order (strength). */
  suites: Record<TlsProtocol, string[]>;
  /** Suites found by -e, which does not say with which version. */
  suitesAnyProtocol: string[];
  /** testssl's own words for each protocol id (SSLv2, SSLv3, TLS1, TLS1_1, TLS1_2, TLS1_3). */
  findings: Record<string, string>;
  /** Hex codes testssl reported that could not be named (kept as "0xC0,0x2B" in suites). */
  unmapped: string[];
  /** Wall-clock seconds of the run. */
  seconds: number;
  exitCode: number | null;
  /** The parsed JSON array testssl wrote. */
  raw: unknown;
}

export interface TestsslEntry {
  id: string;
  ip?: string;
  port?: string;
  severity?: string;
  finding?: string;
}

/** The testssl binary on PATH: `testssl` (Debian) or `testssl.sh` (upstream). */
export function testsslBinary(): string | undefined {
  return ['testssl', 'testssl.sh'].find((b) => hasCommand(b));
}

const PROTOCOL_IDS: Record<string, TlsProtocol | undefined> = {
  SSLv3: 'SSLv3',
  TLS1: 'TLSv1.0',
  TLS1_1: 'TLSv1.1',
  TLS1_2: 'TLSv1.2',
  TLS1_3: 'TLSv1.3',
};

const CIPHER_PROTOCOLS: Record<string, TlsProtocol | undefined> = {
  ssl3: 'SSLv3',
  tls1: 'TLSv1.0',
  tls1_1: 'TLSv1.1',
  tls1_2: 'TLSv1.2',
  tls1_3: 'TLSv1.3',
};

// ---------------------------------------------------------------------------
// Hex code → IANA name

let table: Map<number, string> | undefined;

const ALL_TLS13 = 'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256';

/**
 * The IANA name of every suite the local OpenSSL knows (`openssl ciphers -V
 * -stdname`), completed with testssl's own cipher-mapping.txt for the suites
 * testssl tests with sockets but OpenSSL does not implement.
 */
export function ianaNames(): Map<number, string> {
  if (table) return table;
  const t = new Map<number, string>();
  const r = spawnSync('openssl', ['ciphers', '-V', '-stdname', '-ciphersuites', ALL_TLS13, 'ALL:COMPLEMENTOFALL:@SECLEVEL=0']);
  for (const line of r.stdout?.toString().split('\n') ?? []) {
    const m = /^\s*0x([0-9A-F]{2}),0x([0-9A-F]{2})\s+-\s+(\S+)\s+-\s+\S+/i.exec(line);
    if (m && /^(TLS|SSL)_/.test(m[3]!)) t.set(parseInt(m[1]! + m[2]!, 16), m[3]!);
  }
  const bin = testsslBinary();
  const candidates = ['/etc/testssl/cipher-mapping.txt', '/usr/share/testssl/etc/cipher-mapping.txt'];
  if (bin) {
    const which = spawnSync('sh', ['-c', `command -v ${bin}`]).stdout?.toString().trim();
    if (which) candidates.push(join(dirname(which), 'etc', 'cipher-mapping.txt'), join(dirname(which), '..', 'etc', 'cipher-mapping.txt'));
  }
  const mapping = candidates.find((c) => existsSync(c));
  if (mapping) {
    for (const line of readFileSync(mapping, 'utf8').split('\n')) {
      // "0xC0,0x2B - ECDHE-ECDSA-AES128-GCM-SHA256 TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 TLSv1.2 Kx=…"
      const m = /^\s*0x([0-9A-F]{2}),0x([0-9A-F]{2})\s+-\s+\S+\s+((?:TLS|SSL)_\S+)/i.exec(line);
      if (m) {
        const code = parseInt(m[1]! + m[2]!, 16);
        if (!t.has(code)) t.set(code, m[3]!);
      }
    }
  }
  table = t;
  return t;
}

function hexName(code: number): string {
  const h = code.toString(16).toUpperCase().padStart(4, '0');
  return `0x${h.slice(0, 2)},0x${h.slice(2)}`;
}

// ---------------------------------------------------------------------------
// Parsing

/** Reads testssl's flat JSON (--jsonfile) into protocol and suite findings. */
export function parseTestsslJson(raw: unknown): Omit<TestsslResult, 'seconds' | 'exitCode'> {
  if (!Array.isArray(raw)) throw new Error('testssl JSON: expected the flat array of --jsonfile');
  const protocols = Object.fromEntries(TLS_PROTOCOLS.map((p) => [p, false])) as Record<TlsProtocol, boolean>;
  const suites = Object.fromEntries(TLS_PROTOCOLS.map((p) => [p, [] as string[]])) as Record<TlsProtocol, string[]>;
  const suitesAnyProtocol: string[] = [];
  const findings: Record<string, string> = {};
  const unmapped: string[] = [];
  const names = ianaNames();

  const name = (hex: string, finding: string): string => {
    const code = parseInt(hex, 16);
    const known = names.get(code);
    if (known) return known;
    // The last column of the finding is testssl's own IANA name.
    const last = finding.trim().split(/\s+/).pop() ?? '';
    if (/^(TLS|SSL)_/.test(last)) return last;
    unmapped.push(hexName(code));
    return hexName(code);
  };

  for (const e of raw as TestsslEntry[]) {
    if (!e || typeof e.id !== 'string') continue;
    const finding = typeof e.finding === 'string' ? e.finding : '';
    if (e.id === 'SSLv2' || e.id in PROTOCOL_IDS) {
      findings[e.id] = finding;
      const p = PROTOCOL_IDS[e.id];
      // "offered", "offered (OK)", "offered (deprecated)", "offered with final";
      // against "not offered", "not offered and downgraded to a weaker protocol",
      // "connection failed rather than downgrading to …".
      if (p) protocols[p] = /^(offered|supported)/i.test(finding.trim());
      continue;
    }
    let m = /^cipher-(ssl3|tls1|tls1_1|tls1_2|tls1_3)_x([0-9a-f]+)$/i.exec(e.id);
    if (m) {
      const p = CIPHER_PROTOCOLS[m[1]!.toLowerCase()];
      if (p) suites[p].push(name(m[2]!, finding));
      continue;
    }
    m = /^cipher_x([0-9a-f]+)$/i.exec(e.id);
    if (m) suitesAnyProtocol.push(name(m[1]!, finding));
  }
  return { protocols, suites, suitesAnyProtocol, findings, unmapped, raw };
}

// ---------------------------------------------------------------------------
// Running

/**
 * Runs testssl against host:port and parses what it found. Throws when
 * testssl is missing, runs out of time (it is killed with its children), or
 * writes no usable JSON. A non-zero exit status alone is not an error: testssl
 * 3.0 exits 1 when, e.g., its HTTP service detection is refused.
 */
export async function runTestssl(host: string, port: number, options: TestsslOptions = {}): Promise<TestsslResult> {
  const bin = testsslBinary();
  if (!bin) throw new Error('testssl is not installed (Debian: apt-get install testssl.sh)');
  // A full testssl run takes seconds on a quiet machine and minutes on a loaded one (it starts hundreds of openssl processes).
  const timeoutMs = options.timeoutMs ?? 300_000;
  const checks = options.checks ?? ['-p', '-E'];
  const dir = tempDir('sekisho-testssl-');
  const jsonFile = join(dir, 'result.json'); // must not exist yet: testssl refuses to overwrite without --overwrite
  const target = `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
  const args = [
    '--quiet', '--color', '0', '--warnings', 'off',
    ...(isIP(host) ? ['--nodns', 'none'] : []),
    '--jsonfile', jsonFile,
    ...(options.extraArgs ?? []),
    ...checks,
    target,
  ];
  const started = process.hrtime.bigint();
  try {
    const { code, output, timedOut } = await new Promise<{ code: number | null; output: string; timedOut: boolean }>((resolve, reject) => {
      // Its own process group, so that a timeout also kills the openssl s_client children.
      const child = spawn(bin, args, { cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      const keep = (d: Buffer) => {
        out += d.toString();
        if (out.length > 256 * 1024) out = out.slice(-128 * 1024);
      };
      child.stdout.on('data', keep);
      child.stderr.on('data', keep);
      let timedOut = false;
      const kill = () => {
        try {
          if (child.pid) process.kill(-child.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      };
      const timer = setTimeout(() => {
        timedOut = true;
        kill();
      }, timeoutMs);
      const onExit = () => kill();
      process.once('exit', onExit);
      child.on('error', (e) => {
        clearTimeout(timer);
        process.removeListener('exit', onExit);
        reject(e);
      });
      child.on('close', (c) => {
        clearTimeout(timer);
        process.removeListener('exit', onExit);
        kill(); // stragglers of the group
        resolve({ code: c, output: out, timedOut });
      });
    });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (timedOut) throw new Error(`testssl ${target} did not finish within ${timeoutMs / 1000} s; its output:\n${output.slice(-4000)}`);
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(jsonFile, 'utf8'));
    } catch (e) {
      throw new Error(`testssl ${target} (exit ${code}) wrote no readable JSON (${(e as Error).message}); its output:\n${output.slice(-4000)}`);
    }
    const parsed = parseTestsslJson(raw);
    if (Object.keys(parsed.findings).length === 0 && checks.some((c) => c === '-p' || c === '--protocols')) {
      throw new Error(`testssl ${target} (exit ${code}) reported no protocol findings; its output:\n${output.slice(-4000)}`);
    }
    return { ...parsed, seconds, exitCode: code };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
