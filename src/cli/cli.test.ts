/**
 * The sekisho command line, end to end: the real CLI (dist/src/cli/main.js) in
 * a child process, on SQLite and on PostgreSQL, with openssl as the peer that
 * a facility or an auditor would use to check what the CA hands out.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { COMMANDS } from './registry.js';
import { runCli } from './run.js';
import { STORE_TARGETS, tempDir, type StoreTarget } from '../testing/stores.js';
import { needCommand, needPeer, run } from '../testing/peers.js';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

const FACILITY = '0110113719';
const FACILITY_NAME = 'はこだてクリニック';
/** Valid check digits, never registered. */
const UNREGISTERED = '1310000003';
/** Valid check digits; registered and then suspended in the bad-input home. */
const SUSPENDED = '2714000011';
const WRONG_CHECK_DIGIT = '0110113718';

// The secrets of these tests; none may ever appear in what the CLI prints.
const PASSPHRASE = 'kanri-Passphrase-7f3a9c';
const WRONG_PASSPHRASE = 'machigai-Passphrase-41d2';
const P12_PASSWORD = 'p12-Password-h4k0w8';
const SHORT_PASSWORD = 'tanpw7!';
const SECRETS = [PASSPHRASE, WRONG_PASSPHRASE, P12_PASSWORD, SHORT_PASSWORD];

// The in-process snapshots below must read the store named by the home's config only.
delete process.env.SEKISHO_DB;

interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI with only the environment a user would set. Every run is checked for leaked secrets. */
function sekisho(home: string, args: string[], o: { env?: Record<string, string | undefined>; cwd?: string } = {}): CliResult {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    LANG: 'C.UTF-8',
    SEKISHO_HOME: home,
    SEKISHO_PASSPHRASE: PASSPHRASE,
    SEKISHO_ACTOR: 'operator:test',
    SEKISHO_SQLITE_SYNC: 'NORMAL',
    ...o.env,
  };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  const r = spawnSync(process.execPath, [MAIN, ...args], { env, cwd: o.cwd ?? home, maxBuffer: 64 * 1024 * 1024 });
  const result = { status: r.status, stdout: r.stdout?.toString() ?? '', stderr: r.stderr?.toString() ?? '' };
  for (const s of SECRETS) {
    assert.ok(!result.stdout.includes(s) && !result.stderr.includes(s), `sekisho ${args.join(' ')} printed a secret`);
  }
  return result;
}

/** Runs the CLI and insists on exit status 0. */
function ok(home: string, args: string[], o: Parameters<typeof sekisho>[2] = {}): CliResult {
  const r = sekisho(home, args, o);
  assert.equal(r.status, 0, `sekisho ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r;
}

function openssl(args: string[], input?: string | Buffer) {
  return run('openssl', args, input);
}

function opensslOk(args: string[], input?: string | Buffer) {
  const r = openssl(args, input);
  assert.equal(r.status, 0, `openssl ${args.join(' ')} failed: ${r.stderr}`);
  return r;
}

const pemBlocks = (text: string, label = 'CERTIFICATE') => text.match(new RegExp(`-----BEGIN ${label}-----[\\s\\S]*?-----END ${label}-----\\n?`, 'g')) ?? [];

/** A CSR made by openssl: `newkey` is e.g. ['rsa:2048'] or ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256']. */
function makeCsr(dir: string, name: string, newkey: string[]): string {
  const csr = join(dir, `${name}.csr`);
  opensslOk(['req', '-new', '-newkey', ...newkey, '-nodes', '-keyout', join(dir, `${name}.key`), '-subj', '/CN=request-subject-is-ignored', '-sha256', '-out', csr]);
  return csr;
}

/** The three lists a user sees; equal before and after means the command changed nothing. */
async function snapshot(home: string): Promise<{ certs: unknown; facilities: unknown; audit: unknown }> {
  const list = async (args: string[]) => {
    let out = '';
    let err = '';
    const status = await runCli([...args, '--json', '--home', home], { stdout: (s) => void (out += s), stderr: (s) => void (err += s), env: {}, isTTY: false });
    assert.equal(status, 0, `snapshot ${args.join(' ')}: ${err}`);
    return JSON.parse(out) as unknown;
  };
  return { certs: await list(['cert', 'list']), facilities: await list(['facility', 'list']), audit: await list(['audit', 'list', '--limit', '100000']) };
}

/** Every file under the directories (except the SQLite database, which the snapshot covers) with its SHA-256. */
function files(...dirs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (!/^sekisho\.db(-wal|-shm|-journal)?$/.test(e.name)) out[p] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  for (const d of dirs) if (existsSync(d)) walk(d);
  return out;
}

interface Home {
  home: string;
  work: string;
  /** The postgres:// URL, or undefined for SQLite. */
  db: string | undefined;
}

/** A new CA; a PostgreSQL database is named by --db on init, or by $SEKISHO_DB when `dbVia` is 'env'. */
async function initHome(target: StoreTarget, extra: string[] = [], dbVia: 'flag' | 'env' = 'flag'): Promise<Home & { init: CliResult }> {
  const work = tempDir('sekisho-cli-');
  const home = join(work, 'home');
  const db = await target.fresh();
  const viaFlag = db !== undefined && dbVia === 'flag';
  const init = ok(work, ['init', ...(viaFlag ? ['--db', db] : []), ...extra], { env: { SEKISHO_HOME: home, ...(db && !viaFlag ? { SEKISHO_DB: db } : {}) } });
  return { home, work, db, init };
}

/** The store the home's config.json names: later commands get neither --db nor $SEKISHO_DB. */
function assertStoreFromConfig(h: Home) {
  const config = JSON.parse(readFileSync(join(h.home, 'config.json'), 'utf8')) as { database?: string };
  assert.equal(config.database, h.db, 'config.json names the database given to init');
  assert.equal(existsSync(join(h.home, 'sekisho.db')), h.db === undefined, 'a SQLite file only for the SQLite target');
}

/** Reads the facilities straight from PostgreSQL, to show the CLI wrote there. */
async function facilitiesInPostgres(url: string): Promise<string[][]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<{ number: string; name: string }>('SELECT number, name FROM facilities ORDER BY number')).rows.map((r) => [r.number, r.name]);
  } finally {
    await client.end();
  }
}

/** CSRs shared by every target (made once). */
let csrFixtures: ReturnType<typeof makeCsrFixtures> | undefined;
function makeCsrFixtures() {
  const dir = tempDir('sekisho-csr-');
  const ec = makeCsr(dir, 'ec-p256', ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
  const rsa = makeCsr(dir, 'rsa-2048', ['rsa:2048']);
  const rsa1024 = makeCsr(dir, 'rsa-1024', ['rsa:1024']);
  const secp256k1 = makeCsr(dir, 'secp256k1', ['ec', '-pkeyopt', 'ec_paramgen_curve:secp256k1']);
  const garbage = join(dir, 'garbage.csr');
  writeFileSync(garbage, 'this is not a certificate signing request\n');
  const rsaPem = readFileSync(rsa, 'utf8');
  const lines = rsaPem.trimEnd().split('\n');
  // Cut in the middle of the base64 (no END line) and with the END line kept but half the body gone.
  const truncatedCut = join(dir, 'truncated-cut.csr');
  writeFileSync(truncatedCut, rsaPem.slice(0, Math.floor(rsaPem.length / 2)));
  const truncatedBody = join(dir, 'truncated-body.csr');
  writeFileSync(truncatedBody, [...lines.slice(0, Math.floor(lines.length / 2)), lines[lines.length - 1]!, ''].join('\n'));
  // A DER CSR with one byte flipped inside its signature (an RSA-2048 signature is the last 256 bytes).
  const derFile = join(dir, 'rsa-2048.der');
  opensslOk(['req', '-in', rsa, '-outform', 'DER', '-out', derFile]);
  const flipped = readFileSync(derFile);
  flipped[flipped.length - 100]! ^= 0x01;
  const badSignature = join(dir, 'bad-signature.der');
  writeFileSync(badSignature, flipped);
  return { dir, ec, rsa, rsa1024, secp256k1, garbage, truncatedCut, truncatedBody, badSignature };
}

function csrs() {
  return (csrFixtures ??= makeCsrFixtures());
}

/** Splits `ca chain` output: issuing CA first, then root. */
function writeChain(work: string, chainPem: string) {
  const blocks = pemBlocks(chainPem);
  assert.equal(blocks.length, 2, 'ca chain prints the issuing CA and the root');
  const issuing = join(work, 'issuing.pem');
  const root = join(work, 'root.pem');
  writeFileSync(issuing, blocks[0]!);
  writeFileSync(root, blocks[1]!);
  return { issuing, root };
}

function verifyClient(chain: { issuing: string; root: string }, leaf: string) {
  return openssl(['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', chain.root, '-untrusted', chain.issuing, leaf]);
}

function subjectOf(certFile: string): string {
  return opensslOk(['x509', '-in', certFile, '-noout', '-subject', '-nameopt', 'utf8,sep_comma_plus']).stdout.trim();
}

for (const target of STORE_TARGETS) {
  describe(`sekisho CLI on ${target.name}`, () => {
    const peers = (t: import('node:test').TestContext) => needPeer(t, target.available, 'PostgreSQL (SEKISHO_TEST_POSTGRES_URL)') && needCommand(t, 'openssl');

    test('an operator creates a CA, registers a facility, issues, revokes and publishes a CRL that openssl enforces', async (t) => {
      if (!peers(t)) return;
      const { home, work, db, init } = await initHome(target);
      assert.match(init.stdout, /^CA created in .* \(ecdsa-p256\)\nroot SHA-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}\nroot SHA-1 {3}([0-9A-F]{2}:){19}[0-9A-F]{2}\naudit key SHA-256 [0-9a-f]{64} \(ca\/audit-key\.pem; .*\)\n$/);
      // The printed audit key fingerprint is the SHA-256 of ca/audit-key.pem's SubjectPublicKeyInfo, as openssl computes it.
      const auditSpki = join(work, 'audit-key.der');
      opensslOk(['pkey', '-pubin', '-in', join(home, 'ca', 'audit-key.pem'), '-outform', 'DER', '-out', auditSpki]);
      assert.equal(/audit key SHA-256 ([0-9a-f]{64})/.exec(init.stdout)![1], createHash('sha256').update(readFileSync(auditSpki)).digest('hex'));

      // Where the data lives: the --db given to init is remembered in config.json; later commands get no --db.
      assertStoreFromConfig({ home, work, db });
      assert.equal((JSON.parse(readFileSync(join(home, 'config.json'), 'utf8')) as { keyType: string }).keyType, 'ecdsa-p256');

      const chainPem = ok(home, ['ca', 'chain']).stdout;
      writeFileSync(join(work, 'chain.pem'), chainPem);
      const chain = writeChain(work, chainPem);
      assert.match(opensslOk(['x509', '-in', chain.root, '-noout', '-text']).stdout, /prime256v1/);
      opensslOk(['verify', '-x509_strict', '-CAfile', chain.root, chain.issuing]);

      // Facilities: add, suspend, resume; the JSON list parses and shows each status.
      assert.match(ok(home, ['facility', 'add', '--code', FACILITY, '--name', FACILITY_NAME]).stdout, new RegExp(`registered ${FACILITY} +active +${FACILITY_NAME}`));
      const facilities = () => JSON.parse(ok(home, ['facility', 'list', '--json']).stdout) as { number: string; name: string; status: string }[];
      ok(home, ['facility', 'suspend', FACILITY]);
      assert.deepEqual(facilities().map((f) => [f.number, f.name, f.status]), [[FACILITY, FACILITY_NAME, 'suspended']]);
      ok(home, ['facility', 'resume', FACILITY]);
      assert.deepEqual(facilities().map((f) => [f.number, f.name, f.status]), [[FACILITY, FACILITY_NAME, 'active']]);
      if (db) assert.deepEqual(await facilitiesInPostgres(db), [[FACILITY, FACILITY_NAME]], 'the facility is in PostgreSQL, named by config.json');

      // PKCS#12 delivery: openssl opens it without -legacy; its leaf chains to the root as a TLS client.
      const pw = join(work, 'pw.txt');
      writeFileSync(pw, `${P12_PASSWORD}\n`);
      const p12 = join(work, 'f.p12');
      const issued = ok(home, ['cert', 'issue', '--facility', FACILITY, '--p12', p12, '--password-file', pw]);
      assert.match(issued.stderr, /^issued [0-9a-f]+ → .*f\.p12 \(valid until .*\)\n$/);
      assert.equal(statSync(p12).mode & 0o777, 0o600, 'the PKCS#12 file is readable by its owner only');
      const info = opensslOk(['pkcs12', '-info', '-noout', '-passin', `file:${pw}`, '-in', p12]);
      assert.match(info.stderr + info.stdout, /PBES2, PBKDF2, AES-256-CBC/);
      const p12Leaf = join(work, 'f-leaf.pem');
      opensslOk(['pkcs12', '-in', p12, '-nokeys', '-clcerts', '-passin', `file:${pw}`, '-out', p12Leaf]);
      assert.match(verifyClient(chain, p12Leaf).stdout, /: OK\n$/);
      assert.equal(subjectOf(p12Leaf), `subject=C=JP,O=${FACILITY_NAME},CN=${FACILITY}`);
      const p12Serial = opensslOk(['x509', '-in', p12Leaf, '-noout', '-serial']).stdout.trim().replace(/^serial=/, '').toLowerCase();

      const legacy = join(work, 'legacy.p12');
      ok(home, ['cert', 'issue', '--facility', FACILITY, '--p12', legacy, '--password-file', pw, '--legacy']);
      const legacyInfo = opensslOk(['pkcs12', '-info', '-noout', '-passin', `file:${pw}`, '-in', legacy]);
      assert.match(legacyInfo.stderr + legacyInfo.stdout, /3-?Key ?TripleDES/i);

      // CSR issuance: EC P-256 and RSA-2048 requests made by openssl.
      const ecPem = join(work, 'clinic-ec.pem');
      const rsaPem = join(work, 'clinic-rsa.pem');
      ok(home, ['cert', 'issue', '--facility', FACILITY, '--csr', csrs().ec, '--out', ecPem]);
      ok(home, ['cert', 'issue', '--facility', FACILITY, '--csr', csrs().rsa, '--out', rsaPem]);
      for (const leaf of [ecPem, rsaPem]) {
        assert.match(verifyClient(chain, leaf).stdout, /: OK\n$/);
        assert.equal(subjectOf(leaf), `subject=C=JP,O=${FACILITY_NAME},CN=${FACILITY}`, 'the subject comes from the registry, not the CSR');
      }
      const serialOf = (f: string) => opensslOk(['x509', '-in', f, '-noout', '-serial']).stdout.trim().replace(/^serial=/, '').toLowerCase();
      const ecSerial = serialOf(ecPem);

      type Listed = { serial: string; status: string; profile: string; facilityNumber?: string; pem?: string };
      const certs = () => JSON.parse(ok(home, ['cert', 'list', '--json']).stdout) as Listed[];
      const listed = certs();
      assert.deepEqual(listed.map((c) => c.profile).sort(), ['facility', 'facility', 'facility', 'facility', 'issuing-ca', 'root-ca']);
      assert.ok(listed.every((c) => c.status === 'issued'));
      const byNorm = (s: string) => listed.find((c) => c.serial.replace(/^0+/, '') === s.replace(/^0+/, ''));
      assert.equal(byNorm(ecSerial)?.status, 'issued');
      assert.equal(byNorm(ecSerial)?.facilityNumber, FACILITY);
      assert.equal(byNorm(ecSerial)?.pem, readFileSync(ecPem, 'utf8'));
      assert.ok(byNorm(p12Serial), 'the PKCS#12 certificate is listed');

      // Revocation and the CRL.
      const serial = byNorm(ecSerial)!.serial;
      assert.match(ok(home, ['cert', 'revoke', serial, '--reason', 'keyCompromise']).stdout, new RegExp(`^revoked ${serial} \\(keyCompromise\\)`));
      assert.equal(certs().find((c) => c.serial === serial)?.status, 'revoked');
      const crl = join(work, 'ca.crl');
      assert.match(ok(home, ['crl', '--out', crl]).stderr, /^CRL #1 with 1 entries → /);
      const crlText = opensslOk(['crl', '-inform', 'DER', '-in', crl, '-noout', '-text']).stdout;
      assert.match(crlText, new RegExp(`Serial Number: 0*${serial.replace(/^0+/, '')}\\n`, 'i'));
      assert.match(crlText, /CRL Reason Code: *\n *Key Compromise/);
      const crlPem = join(work, 'ca.crl.pem');
      opensslOk(['crl', '-inform', 'DER', '-in', crl, '-out', crlPem]);
      opensslOk(['crl', '-in', crlPem, '-noout', '-CAfile', chain.issuing]);
      const refused = openssl(['verify', '-crl_check', '-CAfile', chain.root, '-untrusted', chain.issuing, '-CRLfile', crlPem, ecPem]);
      assert.notEqual(refused.status, 0, 'the revoked certificate is refused');
      assert.match(refused.stdout + refused.stderr, /certificate revoked/);
      for (const good of [rsaPem, p12Leaf]) {
        const passed = openssl(['verify', '-crl_check', '-CAfile', chain.root, '-untrusted', chain.issuing, '-CRLfile', crlPem, good]);
        assert.equal(passed.status, 0, passed.stderr);
      }
      const printed = ok(home, ['crl', '--pem']).stdout;
      assert.equal(pemBlocks(printed, 'X509 CRL').length, 1);
      assert.match(opensslOk(['crl', '-noout', '-crlnumber'], printed).stdout, /crlNumber=0x0*2\n/);

      // The audit trail is intact and holds every step, under SEKISHO_ACTOR.
      assert.match(ok(home, ['audit', 'verify']).stdout, /^audit key [0-9a-f]{64}\naudit trail intact: \d+ events, signed through event \d+ \(checkpoint \d+ at [^)]+\)\n$/);
      const events = JSON.parse(ok(home, ['audit', 'list', '--json']).stdout) as { action: string; actor: string; subject?: string }[];
      for (const action of ['certificate.signing', 'certificate.issued', 'certificate.revoked', 'crl.signed', 'facility.add', 'facility.suspend', 'facility.resume']) {
        assert.ok(events.some((e) => e.action === action), `audit list has ${action}`);
      }
      assert.equal(events.find((e) => e.action === 'facility.add')?.actor, 'operator:test');
      assert.equal(events.find((e) => e.action === 'certificate.revoked')?.subject, serial);
    });

    test(`a CA made with --key rsa-2048${target.name === 'postgres' ? ' (database from $SEKISHO_DB)' : ''} issues certificates openssl accepts`, async (t) => {
      if (!peers(t)) return;
      const { home, work, db, init } = await initHome(target, ['--key', 'rsa-2048'], 'env');
      assert.match(init.stdout, /\(rsa-2048\)/);
      assertStoreFromConfig({ home, work, db });
      const chain = writeChain(work, ok(home, ['ca', 'chain']).stdout);
      const rootText = opensslOk(['x509', '-in', chain.root, '-noout', '-text']).stdout;
      assert.match(rootText, /rsaEncryption/);
      assert.match(rootText, /Public-Key: \(2048 bit\)/);
      ok(home, ['facility', 'add', '--code', FACILITY, '--name', FACILITY_NAME]);
      if (db) assert.deepEqual(await facilitiesInPostgres(db), [[FACILITY, FACILITY_NAME]]);
      const pw = join(work, 'pw.txt');
      writeFileSync(pw, P12_PASSWORD);
      const p12 = join(work, 'f.p12');
      ok(home, ['cert', 'issue', '--facility', FACILITY, '--p12', p12, '--password-file', pw, '--key', 'rsa-2048']);
      const leaf = join(work, 'leaf.pem');
      opensslOk(['pkcs12', '-in', p12, '-nokeys', '-clcerts', '-passin', `file:${pw}`, '-out', leaf]);
      assert.match(verifyClient(chain, leaf).stdout, /: OK\n$/);
      const fromCsr = join(work, 'clinic.pem');
      ok(home, ['cert', 'issue', '--facility', FACILITY, '--csr', csrs().ec, '--out', fromCsr]);
      assert.match(verifyClient(chain, fromCsr).stdout, /: OK\n$/);
      assert.match(opensslOk(['x509', '-in', fromCsr, '-noout', '-text']).stdout, /Signature Algorithm: sha256WithRSAEncryption/);
    });

    describe('bad input is refused with status 2, one line on stderr, and nothing written', () => {
      // One home for every case: none of them may change it.
      let shared: Promise<Home & { existingPem: string; existingP12: string; issuedSerial: string; pw: string; short: string }> | undefined;
      const setup = () =>
        (shared ??= (async () => {
          const h = await initHome(target);
          ok(h.home, ['facility', 'add', '--code', FACILITY, '--name', FACILITY_NAME]);
          ok(h.home, ['facility', 'add', '--code', SUSPENDED, '--name', 'なにわ歯科医院']);
          ok(h.home, ['facility', 'suspend', SUSPENDED]);
          const existingPem = join(h.work, 'existing.pem');
          const issued = JSON.parse(ok(h.home, ['cert', 'issue', '--facility', FACILITY, '--csr', csrs().ec, '--out', existingPem, '--json']).stdout) as { serial: string };
          const existingP12 = join(h.work, 'existing.p12');
          writeFileSync(existingP12, 'an earlier delivery that must not be overwritten\n');
          const pw = join(h.work, 'pw.txt');
          writeFileSync(pw, `${P12_PASSWORD}\n`);
          const short = join(h.work, 'short.txt');
          writeFileSync(short, `${SHORT_PASSWORD}\n`);
          return { ...h, existingPem, existingP12, issuedSerial: issued.serial, pw, short };
        })());

      type Shared = Awaited<ReturnType<typeof setup>>;
      interface Case {
        name: string;
        code: string;
        args: (s: Shared) => string[];
        env?: (s: Shared) => Record<string, string | undefined>;
        /** Paths that must not exist afterwards. */
        absent?: (s: Shared) => string[];
      }
      const out = (s: Shared, name: string) => join(s.work, name);
      const issueCsr = (csr: (s: Shared) => string, name: string, facility = FACILITY): Pick<Case, 'args' | 'absent'> => ({
        args: (s) => ['cert', 'issue', '--facility', facility, '--csr', csr(s), '--out', out(s, name)],
        absent: (s) => [out(s, name)],
      });
      const issueP12 = (name: string, facility: string, password: (s: Shared) => string = (s) => s.pw): Pick<Case, 'args' | 'absent'> => ({
        args: (s) => ['cert', 'issue', '--facility', facility, '--p12', out(s, name), '--password-file', password(s)],
        absent: (s) => [out(s, name)],
      });
      const CASES: Case[] = [
        { name: 'a CSR file of garbage', code: 'CSR_MALFORMED', ...issueCsr(() => csrs().garbage, 'garbage.pem') },
        { name: 'a PEM CSR cut off in the middle', code: 'CSR_MALFORMED', ...issueCsr(() => csrs().truncatedCut, 'cut.pem') },
        { name: 'a PEM CSR with half its body missing', code: 'CSR_MALFORMED', ...issueCsr(() => csrs().truncatedBody, 'half.pem') },
        { name: 'a certificate given where a CSR belongs', code: 'CSR_MALFORMED', ...issueCsr((s) => s.existingPem, 'from-cert.pem') },
        { name: 'a DER CSR whose signature does not verify', code: 'CSR_SIGNATURE_INVALID', ...issueCsr(() => csrs().badSignature, 'bad-signature.pem') },
        { name: 'an RSA-1024 CSR', code: 'KEY_TOO_WEAK', ...issueCsr(() => csrs().rsa1024, 'rsa1024.pem') },
        { name: 'a CSR on the secp256k1 curve', code: 'KEY_CURVE_UNSUPPORTED', ...issueCsr(() => csrs().secp256k1, 'k1.pem') },
        { name: 'a facility number with a wrong check digit (cert issue)', code: 'FACILITY_NUMBER_CHECK_DIGIT', ...issueCsr(() => csrs().ec, 'check-digit.pem', WRONG_CHECK_DIGIT) },
        { name: 'a facility number with a wrong check digit (facility add)', code: 'FACILITY_NUMBER_CHECK_DIGIT', args: () => ['facility', 'add', '--code', WRONG_CHECK_DIGIT, '--name', '誤記クリニック'] },
        { name: 'an unregistered facility (CSR)', code: 'FACILITY_UNKNOWN', ...issueCsr(() => csrs().ec, 'unknown.pem', UNREGISTERED) },
        { name: 'a suspended facility (CSR)', code: 'FACILITY_SUSPENDED', ...issueCsr(() => csrs().ec, 'suspended.pem', SUSPENDED) },
        { name: 'a suspended facility (PKCS#12)', code: 'FACILITY_SUSPENDED', ...issueP12('suspended.p12', SUSPENDED) },
        { name: 'an unknown revocation reason', code: 'REVOCATION_REASON_UNKNOWN', args: (s) => ['cert', 'revoke', s.issuedSerial, '--reason', 'lostItOnTheTrain'] },
        { name: 'removeFromCRL as a revocation reason', code: 'REVOCATION_REASON_NOT_FOR_REVOKE', args: (s) => ['cert', 'revoke', s.issuedSerial, '--reason', 'removeFromCRL'] },
        { name: 'revoking a serial the CA never issued', code: 'CERTIFICATE_UNKNOWN', args: () => ['cert', 'revoke', '7a7a7a7a7a7a7a7a7a', '--reason', 'keyCompromise'] },
        { name: 'a wrong CA passphrase (cert issue)', code: 'PASSPHRASE_WRONG', env: () => ({ SEKISHO_PASSPHRASE: WRONG_PASSPHRASE }), ...issueCsr(() => csrs().ec, 'wrong-passphrase.pem') },
        { name: 'an empty CA passphrase (cert issue)', code: 'PASSPHRASE_EMPTY', env: () => ({ SEKISHO_PASSPHRASE: '' }), ...issueP12('empty-passphrase.p12', FACILITY) },
        { name: 'an empty CA passphrase (init of a new home)', code: 'PASSPHRASE_EMPTY', env: (s) => ({ SEKISHO_PASSPHRASE: '', SEKISHO_HOME: out(s, 'new-home') }), args: () => ['init'], absent: (s) => [out(s, 'new-home')] },
        { name: 'no CA passphrase at all, off a terminal', code: 'PASSPHRASE_REQUIRED', env: () => ({ SEKISHO_PASSPHRASE: undefined }), ...issueCsr(() => csrs().ec, 'no-passphrase.pem') },
        { name: 'a PKCS#12 password shorter than 8 characters', code: 'PASSWORD_TOO_SHORT', ...issueP12('short.p12', FACILITY, (s) => s.short) },
        { name: 'an --out file that already exists', code: 'OUTPUT_EXISTS', args: (s) => ['cert', 'issue', '--facility', FACILITY, '--csr', csrs().ec, '--out', s.existingPem] },
        { name: 'a --p12 file that already exists', code: 'OUTPUT_EXISTS', args: (s) => ['cert', 'issue', '--facility', FACILITY, '--p12', s.existingP12, '--password-file', s.pw] },
        { name: 'an --out directory that does not exist (crl)', code: 'OUTPUT_DIR_MISSING', args: (s) => ['crl', '--out', join(s.work, 'no-such-dir', 'ca.crl')] },
        { name: 'an unknown flag', code: 'USAGE', args: (s) => ['cert', 'issue', '--facility', FACILITY, '--csr', csrs().ec, '--out', out(s, 'flag.pem'), '--valid-for', '10y'], absent: (s) => [out(s, 'flag.pem')] },
        { name: 'a missing required flag (facility add without --name)', code: 'USAGE', args: () => ['facility', 'add', '--code', UNREGISTERED] },
        { name: 'a missing serial (cert revoke)', code: 'USAGE', args: () => ['cert', 'revoke', '--reason', 'keyCompromise'] },
        { name: 'a --p12 without --password-file', code: 'USAGE', args: (s) => ['cert', 'issue', '--facility', FACILITY, '--p12', out(s, 'nopw.p12')], absent: (s) => [out(s, 'nopw.p12')] },
        {
          name: 'cert issue with both --csr and --p12',
          code: 'USAGE',
          args: (s) => ['cert', 'issue', '--facility', FACILITY, '--csr', csrs().ec, '--p12', out(s, 'both.p12'), '--password-file', s.pw],
          absent: (s) => [out(s, 'both.p12')],
        },
        { name: 'init on a home that already holds a CA', code: 'HOME_INITIALIZED', args: () => ['init'] },
        ...(target.name === 'postgres'
          ? [{ name: 'init --db on a home that already holds a CA', code: 'HOME_INITIALIZED', args: (s: Shared) => ['init', '--db', s.db!, '--key', 'rsa-2048'] }]
          : []),
      ];

      // What the previous case left behind: the next case's "before" (nothing else touches the home in between).
      let last: { store: Awaited<ReturnType<typeof snapshot>>; files: Record<string, string> } | undefined;
      for (const c of CASES) {
        test(`${c.name}: ${c.code}`, async (t) => {
          if (!peers(t)) return;
          const s = await setup();
          const before = last?.store ?? (await snapshot(s.home));
          const filesBefore = last?.files ?? files(s.work);
          const r = sekisho(s.home, c.args(s), { env: c.env?.(s) ?? {}, cwd: s.work });
          assert.equal(r.status, 2, `exit status (stderr: ${r.stderr})`);
          assert.match(r.stderr, new RegExp(`^sekisho: ${c.code}: [^\\n]+\\n$`), 'exactly one line on stderr, with the code');
          assert.equal(r.stdout, '', 'nothing on stdout');
          last = { store: await snapshot(s.home), files: files(s.work) };
          assert.deepEqual(last.store, before, 'certificates, facilities and the audit trail are unchanged');
          assert.deepEqual(last.files, filesBefore, 'no file created or changed (CA files, CSRs, outputs)');
          for (const p of c.absent?.(s) ?? []) assert.equal(existsSync(p), false, `${p} was not created`);
        });
      }

      test('after all of it the audit trail is still intact', async (t) => {
        if (!peers(t)) return;
        const s = await setup();
        assert.match(ok(s.home, ['audit', 'verify']).stdout, /^audit key [0-9a-f]{64}\naudit trail intact: \d+ events, signed through event \d+ \(checkpoint \d+ at [^)]+\)\n$/);
      });
    });
  });
}

describe('help', () => {
  const home = tempDir('sekisho-help-');

  test('sekisho --help lists every command and exits 0', () => {
    const r = sekisho(home, ['--help']);
    assert.equal(r.status, 0);
    for (const c of COMMANDS) assert.match(r.stdout, new RegExp(`^  ${c.path.join(' ')} +${c.summary.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
    assert.match(r.stdout, /SEKISHO_HOME/);
    assert.match(r.stdout, /exit status: 0 success, 1 failure at run time, 2 bad input or usage/);
  });

  test('sekisho without a command prints the overview and exits 2', () => {
    const r = sekisho(home, []);
    assert.equal(r.status, 2);
    assert.match(r.stdout, /^sekisho — /);
  });

  for (const c of COMMANDS) {
    test(`sekisho ${c.path.join(' ')} --help lists its flags and exits 0`, () => {
      const r = sekisho(home, [...c.path, '--help']);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr, '');
      assert.match(r.stdout, new RegExp(`^usage: sekisho ${c.path.join(' ')}`));
      for (const [name, o] of Object.entries(c.options)) {
        assert.match(r.stdout, new RegExp(`^  --${name}${o.type === 'string' ? ' \\S+' : ''} +\\S`, 'm'), `--${name} is listed`);
      }
      assert.match(r.stdout, /^ {2}--help +show this help$/m);
    });
  }

  test('an unknown command is a usage error', () => {
    const r = sekisho(home, ['certificate', 'issue']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^sekisho: USAGE: unknown command "certificate issue"; see sekisho --help\n$/);
  });
});

