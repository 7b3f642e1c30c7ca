/**
 * A panel of real TLS servers (nginx and `openssl s_server`) for the compliance
 * scanner's tests: one server configured to the CRYPTREC GL-3001 "high
 * security" profile + MHLW 6.0 (TLS 1.2/1.3, ECDHE + AEAD, SHA-256 P-256
 * certificate, client certificate required), and servers that each break one
 * rule of it.
 *
 * Every server runs as a child process of this Node process, on a free port of
 * 127.0.0.1, with a throwaway PKI made with the openssl CLI in a temp dir (one
 * per process, shared by every server of the process). `stop()` kills the
 * server and waits for it; servers still running when the process exits (a
 * failed test that never reached its `finally`) are SIGKILLed from an exit
 * hook, and SIGINT/SIGTERM/SIGHUP kill them before the process dies.
 *
 * What OpenSSL 3.0 (Debian bookworm, 3.0.19, compiled default security level
 * 2) will and will not serve, found by trying it:
 *  - SSLv3 is compiled out (s_client/s_server have no -ssl3): no panel
 *    server can offer it and no openssl peer can probe it (testssl can, with
 *    its own sockets).
 *  - TLS 1.0/1.1 sign the ServerKeyExchange with MD5+SHA-1 / SHA-1, which
 *    OpenSSL 3 counts as < 80 bits: they are only negotiated at @SECLEVEL=0
 *    on both sides (server below it: "internal error" alert; client below
 *    it: "legacy sigalg disallowed or unsupported"), and they have only CBC
 *    suites (no AEAD before TLS 1.2), which the server must list.
 *  - A certificate signed with SHA-1, or an RSA key < 2048 bits, is refused by
 *    SSL_CTX_use_certificate ("ca md too weak" / "ee key too small") unless the
 *    security level is 0 when the certificate is loaded; `@SECLEVEL=0` in the
 *    -cipher string does that for s_server. A client at the default level
 *    still completes the handshake, but chain verification fails with "EE
 *    certificate key too weak" (66) / "CA signature digest algorithm too
 *    weak" (68), which aborts it when the client enforces verification
 *    (s_client -verify_return_error, Node's rejectUnauthorized).
 *  - DHE suites are left out everywhere: nginx 1.22 has no DH parameters
 *    unless `ssl_dhparam` is set, and the compliant panel server has an ECDSA
 *    certificate only, so DHE-RSA could not be chosen anyway.
 *  - nginx's `ssl_verify_client on` does NOT refuse the TLS handshake of a
 *    client without a certificate (it sets SSL_VERIFY_PEER without
 *    FAIL_IF_NO_PEER_CERT): with TLS 1.2 and 1.3 the handshake completes and
 *    nginx answers the first HTTP request with "400 No required SSL
 *    certificate was sent". s_server -Verify 1 refuses in the handshake
 *    (TLS 1.2: handshake_failure alert; TLS 1.3: certificate_required alert
 *    after the client has already seen its Finished).
 *  - TLS 1.3 suites are configured separately (`ssl_conf_command Ciphersuites`
 *    / `-ciphersuites`); the two CCM suites are only enabled when named.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { tempDir } from './stores.js';

export type TlsProtocol = 'SSLv3' | 'TLSv1.0' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
export const TLS_PROTOCOLS: readonly TlsProtocol[] = ['SSLv3', 'TLSv1.0', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

/** The key of a server certificate and the hash its issuer (the panel root, RSA-2048) signs it with. */
export interface LeafSpec {
  key: 'ecdsa-p256' | 'rsa-2048' | 'rsa-1024';
  hash: 'sha256' | 'sha1';
}

export interface PanelServer {
  /** Panel name, also the HTTP body nginx answers with. */
  name: string;
  software: 'nginx' | 'openssl';
  /** What the server is there to show. */
  purpose: string;
  /** Versions the server is configured to offer; contiguous (s_server takes a min and a max). */
  protocols: TlsProtocol[];
  /** OpenSSL cipher string for TLS ≤ 1.2 (`ssl_ciphers` / `-cipher`), @SECLEVEL included. */
  ciphers: string;
  /** TLS 1.3 suites (`ssl_conf_command Ciphersuites` / `-ciphersuites`). */
  ciphersuites: string;
  /** Key-exchange groups (`ssl_ecdh_curve` / `-groups`). */
  groups: string;
  preferServerCiphers: boolean;
  /** Server certificates (nginx may hold one ECDSA and one RSA; s_server takes one or two). */
  certificates: LeafSpec[];
  /** Require a client certificate issued by the panel's client CA. */
  verifyClient: boolean;
  /**
   * nginx only: refuse a client without a certificate in the TLS handshake
   * (`ssl_conf_command VerifyMode Peer,Require`) instead of nginx's default
   * of completing it and answering HTTP 400. s_server -Verify always refuses
   * in the handshake.
   */
  clientCertInHandshake?: boolean;
  /** What a client sees: checked against openssl s_client (and testssl) by tls-servers.test.ts. */
  expected: PanelExpectation;
}

export interface PanelExpectation {
  /** Versions a client can negotiate. */
  protocols: TlsProtocol[];
  /**
   * IANA names of every suite a client can negotiate, per version, in the
   * server's preference order (which is the configured order; with two
   * certificates the one chosen depends on the suite).
   */
  suites: Partial<Record<TlsProtocol, string[]>>;
  /**
   * A client that presents no certificate: 'handshake' = refused with an alert
   * in the handshake (TLS 1.3: after the client's Finished, so the client
   * first believes it is connected); 'http-400' = the handshake completes and
   * nginx answers "400 No required SSL certificate was sent"; 'served'.
   */
  withoutClientCert: 'handshake' | 'http-400' | 'served';
}

export interface RunningServer {
  name: string;
  host: '127.0.0.1';
  port: number;
  /** Trust anchor of the server's chain (the panel root CA, PEM). */
  caPem: string;
  /** A client certificate (and key) the server accepts, when it verifies clients. */
  clientCertPem?: string;
  clientKeyPem?: string;
  /** The same as files, for command-line peers (openssl s_client, testssl). */
  caFile: string;
  clientCertFile?: string;
  clientKeyFile?: string;
  config: PanelServer;
  pid: number;
  /** What the server wrote to stderr / its error log so far (for failure messages). */
  logs(): string;
  /** Kills the server and waits until it has exited; safe to call more than once. */
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------
// Cipher lists

/** CRYPTREC GL-3001 high, TLS 1.3, in the guideline's order (tls-profiles.json). */
export const HIGH_TLS13_SUITES =
  'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256';

/**
 * CRYPTREC GL-3001 high, TLS 1.2, as OpenSSL names, in the order of
 * tls-profiles.json, without the DHE-RSA suites (see the header) and without
 * Camellia-GCM (OpenSSL does not implement it). A server only ever picks the
 * ones its certificate can authenticate: ECDSA suites with the P-256
 * certificate, RSA suites with an RSA one.
 */
export const HIGH_TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'ECDHE-ECDSA-AES256-CCM',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES128-CCM',
].join(':');

export const HIGH_GROUPS = 'X25519:prime256v1:secp384r1';

const TLS13_ALL = HIGH_TLS13_SUITES.split(':');
/** What HIGH_TLS12_CIPHERS gives a server with the P-256 certificate only. */
const ECDSA_HIGH = [
  'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384',
  'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256',
  'TLS_ECDHE_ECDSA_WITH_AES_256_CCM',
  'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256',
  'TLS_ECDHE_ECDSA_WITH_AES_128_CCM',
];
/** What HIGH_TLS12_CIPHERS gives a server with an RSA certificate only. */
const RSA_HIGH = [
  'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384',
  'TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256',
  'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256',
];

export type PanelName =
  | 'nginx-compliant'
  | 'openssl-compliant'
  | 'nginx-tls11'
  | 'nginx-cbc'
  | 'openssl-sha1-cert'
  | 'nginx-no-client-cert'
  | 'nginx-client-cert-handshake'
  | 'openssl-rsa1024';

const COMPLIANT: Omit<PanelServer, 'name' | 'software' | 'purpose'> = {
  protocols: ['TLSv1.2', 'TLSv1.3'],
  ciphers: HIGH_TLS12_CIPHERS,
  ciphersuites: HIGH_TLS13_SUITES,
  groups: HIGH_GROUPS,
  preferServerCiphers: true,
  certificates: [{ key: 'ecdsa-p256', hash: 'sha256' }],
  verifyClient: true,
  expected: {
    protocols: ['TLSv1.2', 'TLSv1.3'],
    suites: { 'TLSv1.2': ECDSA_HIGH, 'TLSv1.3': TLS13_ALL },
    withoutClientCert: 'http-400',
  },
};

export const PANEL: Record<PanelName, PanelServer> = {
  'nginx-compliant': {
    ...COMPLIANT,
    name: 'nginx-compliant',
    software: 'nginx',
    purpose: 'CRYPTREC high + MHLW 6.0: TLS 1.2/1.3, ECDHE+AEAD only, P-256/SHA-256 certificate, client certificate required',
  },
  'openssl-compliant': {
    ...COMPLIANT,
    name: 'openssl-compliant',
    software: 'openssl',
    purpose: 'the same policy as nginx-compliant, served by openssl s_server -Verify 1',
    expected: { ...COMPLIANT.expected, withoutClientCert: 'handshake' },
  },
  'nginx-tls11': {
    ...COMPLIANT,
    name: 'nginx-tls11',
    software: 'nginx',
    purpose: 'compliant, but also TLS 1.1 (with the two ECDHE-ECDSA CBC-SHA suites it needs, at @SECLEVEL=0)',
    protocols: ['TLSv1.1', 'TLSv1.2', 'TLSv1.3'],
    // TLS 1.1 has no AEAD suite: without a CBC suite nothing could be negotiated.
    ciphers: `${HIGH_TLS12_CIPHERS}:ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0`,
    expected: {
      ...COMPLIANT.expected,
      protocols: ['TLSv1.1', 'TLSv1.2', 'TLSv1.3'],
      suites: {
        'TLSv1.1': ['TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA', 'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA'],
        'TLSv1.2': [...ECDSA_HIGH, 'TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA', 'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA'],
        'TLSv1.3': TLS13_ALL,
      },
    },
  },
  'nginx-cbc': {
    ...COMPLIANT,
    name: 'nginx-cbc',
    software: 'nginx',
    purpose: 'compliant protocols, but CBC suites (SHA-1 and SHA-384 MACs) and static-RSA AES128-SHA besides the AEAD ones; ECDSA and RSA certificates',
    ciphers: `${HIGH_TLS12_CIPHERS}:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:AES128-SHA`,
    certificates: [
      { key: 'ecdsa-p256', hash: 'sha256' },
      { key: 'rsa-2048', hash: 'sha256' },
    ],
    expected: {
      ...COMPLIANT.expected,
      suites: {
        'TLSv1.2': [
          'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384',
          'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384',
          'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256',
          'TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256',
          'TLS_ECDHE_ECDSA_WITH_AES_256_CCM',
          'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256',
          'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256',
          'TLS_ECDHE_ECDSA_WITH_AES_128_CCM',
          'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA',
          'TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384',
          'TLS_RSA_WITH_AES_128_CBC_SHA',
        ],
        'TLSv1.3': TLS13_ALL,
      },
    },
  },
  'openssl-sha1-cert': {
    ...COMPLIANT,
    name: 'openssl-sha1-cert',
    software: 'openssl',
    purpose: 'compliant, but the P-256 leaf is signed sha1WithRSAEncryption (served at @SECLEVEL=0)',
    ciphers: `${HIGH_TLS12_CIPHERS}:@SECLEVEL=0`,
    certificates: [{ key: 'ecdsa-p256', hash: 'sha1' }],
    expected: { ...COMPLIANT.expected, withoutClientCert: 'handshake' },
  },
  'nginx-no-client-cert': {
    ...COMPLIANT,
    name: 'nginx-no-client-cert',
    software: 'nginx',
    purpose: 'compliant, but no client certificate is requested',
    verifyClient: false,
    expected: { ...COMPLIANT.expected, withoutClientCert: 'served' },
  },
  'nginx-client-cert-handshake': {
    ...COMPLIANT,
    name: 'nginx-client-cert-handshake',
    software: 'nginx',
    purpose: 'compliant, and a client without a certificate is refused in the handshake (ssl_conf_command VerifyMode Peer,Require), not by HTTP 400',
    clientCertInHandshake: true,
    expected: { ...COMPLIANT.expected, withoutClientCert: 'handshake' },
  },
  'openssl-rsa1024': {
    ...COMPLIANT,
    name: 'openssl-rsa1024',
    software: 'openssl',
    purpose: 'compliant suites, but an RSA-1024 server key (served at @SECLEVEL=0; only the ECDHE-RSA suites can be chosen)',
    ciphers: `${HIGH_TLS12_CIPHERS}:@SECLEVEL=0`,
    certificates: [{ key: 'rsa-1024', hash: 'sha256' }],
    expected: {
      ...COMPLIANT.expected,
      suites: { 'TLSv1.2': RSA_HIGH, 'TLSv1.3': TLS13_ALL },
      withoutClientCert: 'handshake',
    },
  },
};

// ---------------------------------------------------------------------------
// Child processes

interface Exec {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function exec(cmd: string, args: string[], timeoutMs = 30_000): Promise<Exec> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr });
    });
  });
}

async function openssl(args: string[]): Promise<string> {
  const r = await exec('openssl', args);
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr.trim()}`);
  return r.stdout;
}

// ---------------------------------------------------------------------------
// The throwaway PKI

const OPENSSL_CNF = `
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
[ ca_ext ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ server_ec_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ server_rsa_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ client_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

interface Pki {
  dir: string;
  cnf: string;
  rootCert: string;
  rootKey: string;
  clientCaCert: string;
  clientCert: string;
  clientKey: string;
  leaves: Map<string, Promise<{ cert: string; key: string }>>;
}

let pkiPromise: Promise<Pki> | undefined;
let pkiDirForCleanup: string | undefined;

function serial(): string {
  return `0x${(randomBytes(16)[0]! & 0x7f).toString(16).padStart(2, '0')}${randomBytes(15).toString('hex')}`;
}

function newKey(path: string, key: LeafSpec['key'] | 'ec-p256' | 'rsa-2048'): Promise<string> {
  const args =
    key === 'ecdsa-p256' || key === 'ec-p256'
      ? ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']
      : ['-algorithm', 'RSA', '-pkeyopt', `rsa_keygen_bits:${key === 'rsa-1024' ? 1024 : 2048}`];
  return openssl(['genpkey', ...args, '-out', path]);
}

async function issue(pki: Pick<Pki, 'dir' | 'cnf'>, o: { name: string; subject: string; caCert: string; caKey: string; ext: string; hash: string; key: string }): Promise<string> {
  const csr = join(pki.dir, `${o.name}.csr`);
  const cert = join(pki.dir, `${o.name}.crt`);
  await openssl(['req', '-new', '-config', pki.cnf, '-key', o.key, '-subj', o.subject, '-out', csr]);
  await openssl([
    'x509', '-req', '-in', csr, '-CA', o.caCert, '-CAkey', o.caKey, '-set_serial', serial(), '-days', '30',
    `-${o.hash}`, '-extfile', pki.cnf, '-extensions', o.ext, '-out', cert,
  ]);
  return cert;
}

async function makePki(): Promise<Pki> {
  const dir = tempDir('sekisho-panel-pki-');
  pkiDirForCleanup = dir;
  const cnf = join(dir, 'openssl.cnf');
  writeFileSync(cnf, OPENSSL_CNF);
  const rootKey = join(dir, 'root.key');
  const rootCert = join(dir, 'root.crt');
  const clientCaKey = join(dir, 'client-ca.key');
  const clientCaCert = join(dir, 'client-ca.crt');
  const clientKey = join(dir, 'client.key');
  await Promise.all([newKey(rootKey, 'rsa-2048'), newKey(clientCaKey, 'ec-p256'), newKey(clientKey, 'ec-p256')]);
  const selfSigned = (key: string, cert: string, subject: string) =>
    openssl(['req', '-x509', '-new', '-config', cnf, '-key', key, '-subj', subject, '-days', '30', '-sha256',
      '-set_serial', serial(), '-extensions', 'ca_ext', '-out', cert]);
  await Promise.all([
    selfSigned(rootKey, rootCert, '/C=JP/O=Sekisho Test Panel/CN=Sekisho Panel Root CA'),
    selfSigned(clientCaKey, clientCaCert, '/C=JP/O=Sekisho Test Panel/CN=Sekisho Panel Client CA'),
  ]);
  const clientCert = await issue({ dir, cnf }, {
    name: 'client', subject: '/C=JP/O=Sekisho Panel Clinic/CN=panel-client', caCert: clientCaCert, caKey: clientCaKey,
    ext: 'client_ext', hash: 'sha256', key: clientKey,
  });
  return { dir, cnf, rootCert, rootKey, clientCaCert, clientCert, clientKey, leaves: new Map() };
}

function pki(): Promise<Pki> {
  pkiPromise ??= makePki();
  return pkiPromise;
}

function leaf(p: Pki, spec: LeafSpec): Promise<{ cert: string; key: string }> {
  const name = `server-${spec.key}-${spec.hash}`;
  let made = p.leaves.get(name);
  if (!made) {
    made = (async () => {
      const key = join(p.dir, `${name}.key`);
      await newKey(key, spec.key);
      const cert = await issue(p, {
        name, subject: '/C=JP/O=Sekisho Test Panel/CN=localhost', caCert: p.rootCert, caKey: p.rootKey,
        ext: spec.key === 'ecdsa-p256' ? 'server_ec_ext' : 'server_rsa_ext', hash: spec.hash, key,
      });
      return { cert, key };
    })();
    p.leaves.set(name, made);
  }
  return made;
}

// ---------------------------------------------------------------------------
// Keeping track of live servers

/** Running servers: pid (= process group) → the server's temp dir. */
const live = new Map<number, string>();
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal); // each server is the leader of its own process group (nginx: master + worker)
  } catch {
    /* already gone */
  }
}

/** Synchronous last resort (process exit, fatal signal): kill every server, remove every temp dir. */
function cleanUpNow(): void {
  for (const [pid, dir] of live) {
    killGroup(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
  live.clear();
  if (pkiDirForCleanup) rmSync(pkiDirForCleanup, { recursive: true, force: true });
}

function onSignal(signal: NodeJS.Signals): void {
  cleanUpNow();
  for (const s of SIGNALS) process.removeListener(s, onSignal);
  process.kill(process.pid, signal);
}

let hooked = false;
function track(pid: number, dir: string): void {
  live.set(pid, dir);
  if (!hooked) {
    hooked = true;
    process.on('exit', cleanUpNow);
  }
  if (live.size === 1) for (const s of SIGNALS) process.on(s, onSignal);
}

function untrack(pid: number): void {
  live.delete(pid);
  if (live.size === 0) for (const s of SIGNALS) process.removeListener(s, onSignal);
}

// ---------------------------------------------------------------------------
// Ports

/** A port that was free a moment ago (bind to 0, read, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Whether something accepts TCP connections on 127.0.0.1:port (bounded to 1 s). */
export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.setTimeout(1000);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(false));
  });
}

/** True when nothing listens on the port any more (a fresh bind succeeds). */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

// ---------------------------------------------------------------------------
// Starting a server

const NGINX_PROTOCOL: Record<TlsProtocol, string> = {
  SSLv3: 'SSLv3',
  'TLSv1.0': 'TLSv1',
  'TLSv1.1': 'TLSv1.1',
  'TLSv1.2': 'TLSv1.2',
  'TLSv1.3': 'TLSv1.3',
};

function nginxConf(config: PanelServer, dir: string, port: number, certs: { cert: string; key: string }[], clientCa: string): string {
  const q = (s: string) => `"${s.replace(/["\\]/g, '\\$&')}"`;
  const lines = [
    process.getuid?.() === 0 ? 'user root;' : '# not root: the workers run as this user',
    'worker_processes 1;',
    'events { worker_connections 64; }',
    'http {',
    '  access_log off;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${q(join(dir, `${t}_temp`))};`),
    '  server {',
    `    listen 127.0.0.1:${port} ssl;`,
    '    server_name localhost;',
    ...certs.flatMap((c) => [`    ssl_certificate ${q(c.cert)};`, `    ssl_certificate_key ${q(c.key)};`]),
    `    ssl_protocols ${config.protocols.map((p) => NGINX_PROTOCOL[p]).join(' ')};`,
    `    ssl_ciphers ${q(config.ciphers)};`,
    `    ssl_prefer_server_ciphers ${config.preferServerCiphers ? 'on' : 'off'};`,
    `    ssl_conf_command Ciphersuites ${q(config.ciphersuites)};`,
    `    ssl_ecdh_curve ${config.groups};`,
    ...(config.verifyClient
      ? [`    ssl_client_certificate ${q(clientCa)};`, '    ssl_verify_client on;', '    ssl_verify_depth 2;']
      : []),
    // Applied after ssl_verify_client has set SSL_VERIFY_PEER; adds FAIL_IF_NO_PEER_CERT.
    ...(config.verifyClient && config.clientCertInHandshake ? ['    ssl_conf_command VerifyMode Peer,Require;'] : []),
    `    location / { default_type text/plain; return 200 ${q(`sekisho-panel ${config.name}\n`)}; }`,
    '  }',
    '}',
  ];
  return lines.join('\n') + '\n';
}

function protocolRange(protocols: TlsProtocol[]): [string, string] {
  const idx = protocols.map((p) => TLS_PROTOCOLS.indexOf(p)).sort((a, b) => a - b);
  const lo = idx[0];
  const hi = idx[idx.length - 1];
  if (lo === undefined || hi === undefined || hi - lo + 1 !== idx.length) {
    throw new Error(`s_server needs a contiguous protocol range, got ${protocols.join(', ')}`);
  }
  const name = (i: number) => NGINX_PROTOCOL[TLS_PROTOCOLS[i]!];
  return [name(lo), name(hi)];
}

function opensslArgs(config: PanelServer, port: number, certs: { cert: string; key: string }[], clientCa: string): string[] {
  const [min, max] = protocolRange(config.protocols);
  const [first, second, ...rest] = certs;
  if (!first || rest.length > 0) throw new Error('s_server takes one or two certificates');
  return [
    's_server',
    '-accept', `127.0.0.1:${port}`,
    // -www: answer each connection with an HTTP status page and go on; without
    // it s_server talks to stdin and gives up at its EOF.
    '-www',
    '-cert', first.cert, '-key', first.key,
    ...(second ? ['-dcert', second.cert, '-dkey', second.key] : []),
    '-min_protocol', min, '-max_protocol', max,
    // The cipher string (with its @SECLEVEL) is applied before the certificate is loaded.
    '-cipher', config.ciphers,
    '-ciphersuites', config.ciphersuites,
    '-groups', config.groups,
    ...(config.preferServerCiphers ? ['-serverpref'] : []),
    ...(config.verifyClient ? ['-Verify', '1', '-CAfile', clientCa] : []),
  ];
}

const START_TIMEOUT_MS = 10_000;

/** Starts a panel server and resolves once its port accepts connections. */
export async function startTlsServer(config: PanelServer): Promise<RunningServer> {
  const p = await pki();
  const certs = await Promise.all(config.certificates.map((c) => leaf(p, c)));
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    try {
      return await startOn(config, p, certs, port);
    } catch (e) {
      lastError = e as Error;
      // Somebody took the port between freePort() and the bind: try another one.
      if (!/Address already in use|EADDRINUSE/i.test(lastError.message)) throw lastError;
    }
  }
  throw lastError!;
}

async function startOn(config: PanelServer, p: Pki, certs: { cert: string; key: string }[], port: number): Promise<RunningServer> {
  const dir = tempDir(`sekisho-panel-${config.name}-`);
  const errorLog = join(dir, 'error.log');
  let cmd: string;
  let args: string[];
  if (config.software === 'nginx') {
    for (const t of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, `${t}_temp`));
    const conf = join(dir, 'nginx.conf');
    writeFileSync(conf, nginxConf(config, dir, port, certs, p.clientCaCert));
    cmd = 'nginx';
    args = ['-p', `${dir}/`, '-c', conf, '-g', `daemon off; pid ${join(dir, 'nginx.pid')}; error_log ${errorLog} notice;`];
  } else {
    cmd = 'openssl';
    args = opensslArgs(config, port, certs, p.clientCaCert);
  }

  // detached: the server leads its own process group, so stop() reaches nginx's worker too.
  const child = spawn(cmd, args, { cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (d: Buffer) => {
    output += d.toString();
    if (output.length > 64 * 1024) output = output.slice(-32 * 1024);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolve();
    });
  });
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  if (child.pid === undefined) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${config.name}: could not start ${cmd}: ${(await spawnError).message}`);
  }
  const pid = child.pid;
  track(pid, dir);

  const logs = () => {
    let log = '';
    try {
      log = readFileSync(errorLog, 'utf8');
    } catch {
      /* s_server, or nginx has not written it yet */
    }
    return [output.trim(), log.trim()].filter(Boolean).join('\n');
  };

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      if (!exited) {
        killGroup(pid, 'SIGTERM'); // nginx: fast shutdown; s_server: dies
        const t = setTimeout(() => killGroup(pid, 'SIGKILL'), 5000);
        await exit;
        clearTimeout(t);
      }
      killGroup(pid, 'SIGKILL'); // anything of the group left behind (an orphaned nginx worker)
      untrack(pid);
      rmSync(dir, { recursive: true, force: true });
    })();
    return stopped;
  };

  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`${config.name}: ${cmd} exited (${exited.code ?? exited.signal}) before accepting connections on port ${port}:\n${logs()}`);
    }
    // The server's own word that it listens (so that a stranger who took the
    // port after freePort() is not mistaken for it), then a connection.
    const listening = config.software === 'nginx' ? /start worker process/.test(logs()) : /^ACCEPT$/m.test(output);
    if (listening && (await accepts(port))) break;
    if (Date.now() > deadline) {
      const l = logs();
      await stop();
      throw new Error(`${config.name}: ${cmd} did not accept connections on port ${port} within ${START_TIMEOUT_MS} ms:\n${l}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  return {
    name: config.name,
    host: '127.0.0.1',
    port,
    caPem: readFileSync(p.rootCert, 'utf8'),
    caFile: p.rootCert,
    ...(config.verifyClient
      ? {
          clientCertPem: readFileSync(p.clientCert, 'utf8'),
          clientKeyPem: readFileSync(p.clientKey, 'utf8'),
          clientCertFile: p.clientCert,
          clientKeyFile: p.clientKey,
        }
      : {}),
    config,
    pid,
    logs,
    stop,
  };
}

// ---------------------------------------------------------------------------
// A peer: openssl s_client

let namesCache: { toOpenssl: Map<string, string>; toIana: Map<string, string> } | undefined;

/** IANA ↔ OpenSSL suite names, from `openssl ciphers -V -stdname` (every suite the local OpenSSL has). */
export function suiteNames(): { toOpenssl: Map<string, string>; toIana: Map<string, string> } {
  if (namesCache) return namesCache;
  const r = spawnSync('openssl', ['ciphers', '-V', '-stdname', '-ciphersuites', HIGH_TLS13_SUITES, 'ALL:COMPLEMENTOFALL:@SECLEVEL=0']);
  const toOpenssl = new Map<string, string>();
  const toIana = new Map<string, string>();
  for (const line of r.stdout?.toString().split('\n') ?? []) {
    // "0xC0,0x2B - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 - ECDHE-ECDSA-AES128-GCM-SHA256 TLSv1.2 Kx=…"
    const m = /^\s*0x[0-9A-F]{2},0x[0-9A-F]{2}\s+-\s+(\S+)\s+-\s+(\S+)/i.exec(line);
    if (m) {
      toOpenssl.set(m[1]!, m[2]!);
      toIana.set(m[2]!, m[1]!);
    }
  }
  namesCache = { toOpenssl, toIana };
  return namesCache;
}

export interface HandshakeOptions {
  protocol: Exclude<TlsProtocol, 'SSLv3'>;
  /** Present the panel's client certificate (default: when the server verifies clients). */
  clientCert?: boolean;
  /** Offer only these suites (IANA names, in the client's order of preference); for TLS 1.3 they go to -ciphersuites. */
  suites?: string[];
  /** Client cipher string for TLS ≤ 1.2 when no suite is given; default ALL:@SECLEVEL=0 so that the client never is what refuses. */
  cipher?: string;
  timeoutMs?: number;
}

export interface HandshakeResult {
  /** An HTTP 200 came back over the connection: handshake and client authentication accepted. */
  ok: boolean;
  /** The client saw the handshake complete. */
  established: boolean;
  /** Status of the HTTP response, when one came back (nginx: 400 without a client certificate). */
  httpStatus?: number;
  /** Version and suite (IANA name) of the ServerHello, when one came. */
  protocol?: string;
  suite?: string;
  /** "X25519, 253 bits", as s_client prints the server's key-exchange key. */
  tempKey?: string;
  /** The certificates the server sent, PEM, leaf first. */
  peerCertificates: string[];
  stdout: string;
  stderr: string;
}

const S_CLIENT_VERSION: Record<HandshakeOptions['protocol'], string> = {
  'TLSv1.0': '-tls1',
  'TLSv1.1': '-tls1_1',
  'TLSv1.2': '-tls1_2',
  'TLSv1.3': '-tls1_3',
};

/**
 * Connects with `openssl s_client` at exactly one protocol version, sends an
 * HTTP/1.0 GET and reads until the server closes. `ok` only when an HTTP 200
 * came back: with TLS 1.3 the client's handshake completes before the server
 * has checked the client certificate, and nginx's ssl_verify_client completes
 * it without one, so a completed handshake alone proves nothing about client
 * authentication. The client runs at @SECLEVEL=0 (and does not enforce chain
 * verification), so that what is refused is refused by the server.
 */
export function opensslHandshake(server: RunningServer, o: HandshakeOptions): Promise<HandshakeResult> {
  const withCert = o.clientCert ?? server.config.verifyClient;
  const args = [
    's_client', '-connect', `${server.host}:${server.port}`, '-servername', 'localhost', '-showcerts', '-state', '-ign_eof',
    S_CLIENT_VERSION[o.protocol], '-CAfile', server.caFile,
  ];
  if (o.suites && o.protocol === 'TLSv1.3') {
    args.push('-ciphersuites', o.suites.join(':'), '-cipher', 'ALL:@SECLEVEL=0');
  } else if (o.suites) {
    const names = o.suites.map((x) => {
      const name = suiteNames().toOpenssl.get(x);
      if (!name) throw new Error(`the local openssl does not implement ${x}`);
      return name;
    });
    args.push('-cipher', `${names.join(':')}:@SECLEVEL=0`);
  } else {
    args.push('-cipher', o.cipher ?? 'ALL:@SECLEVEL=0');
  }
  if (withCert) {
    // The panel's client certificate exists even for servers that do not ask for one.
    args.push('-cert', server.clientCertFile ?? join(pkiDir(), 'client.crt'), '-key', server.clientKeyFile ?? join(pkiDir(), 'client.key'));
  }
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 10_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', () => {
      clearTimeout(timer);
      // Not anchored: s_client's dump of a TLS 1.3 session ticket and the
      // response it copies to stdout can end up on one line.
      const status = /HTTP\/1\.[01] (\d{3}) /.exec(stdout)?.[1];
      // "New, TLSv1.0, Cipher is ECDHE-ECDSA-AES256-SHA" (that version is the
      // suite's, not the connection's) / "New, (NONE), Cipher is (NONE)";
      // the connection's version is the SSL-Session block's "Protocol  : TLSv1.1".
      const session = /^New, \S+, Cipher is (\S+)/m.exec(stdout);
      const version = /^\s+Protocol\s*: (\S+)/m.exec(stdout)?.[1];
      const chain = /^Certificate chain\n([\s\S]*?)^---$/m.exec(stdout)?.[1] ?? '';
      const opensslSuite = session?.[1];
      resolve({
        ok: status === '200',
        // -state: the client read the server's Finished. (s_client prints its
        // "New, TLSv1.2, Cipher is …" summary even when the server's alert
        // ended the handshake after the ServerHello.)
        established: /^SSL_connect:SSLv3\/TLS read finished/m.test(stderr),
        ...(status ? { httpStatus: Number(status) } : {}),
        ...(session && version && opensslSuite !== '(NONE)' && /^SSL_connect:SSLv3\/TLS read server hello/m.test(stderr) ? { protocol: version, suite: suiteNames().toIana.get(opensslSuite!) ?? opensslSuite! } : {}),
        ...(/^Server Temp Key: (.+)$/m.test(stdout) ? { tempKey: /^Server Temp Key: (.+)$/m.exec(stdout)![1]! } : {}),
        peerCertificates: chain.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g) ?? [],
        stdout,
        stderr,
      });
    });
    child.stdin.on('error', () => {
      /* the server may close before we have written */
    });
    child.stdin.end('GET / HTTP/1.0\r\nHost: localhost\r\n\r\n');
  });
}

function pkiDir(): string {
  if (!pkiDirForCleanup) throw new Error('no panel PKI yet');
  return pkiDirForCleanup;
}
