/**
 * A CA home with one client certificate per way a client can be refused, as
 * files curl and openssl can use, and real upstreams: an HTTP server that
 * answers with the headers it saw, and a TCP server that reads a PROXY v2
 * header and echoes HL7 MLLP frames.
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CertificateAuthority, initAuthority, readKeyFile } from '../ca/index.js';
import { certificateToPem } from '../pki/index.js';
import { checkDigit } from '../policy/index.js';
import { jsonLogger, openGateway, parseGatewayConfig, parseProxyV2, PP2_TYPE_SEKISHO_IDENTITY, type GatewaySetup } from '../gateway/index.js';
import { run } from './peers.js';
import { tempDir } from './stores.js';

export const PASSPHRASE = 'gateway-fixture-passphrase';
export const facilityNumber = (nine: string) => `${nine}${checkDigit(nine)}`;
export const FACILITY_A = facilityNumber('011011371');
export const FACILITY_B = facilityNumber('131234567');
export const FACILITY_C = facilityNumber('271234567');

export interface ClientFiles {
  cert: string;
  key: string;
  serial?: string;
}

export interface GatewayFixture {
  dir: string;
  home: string;
  ca: CertificateAuthority;
  /** CA chain PEM (issuing, root): what clients trust for the gateway's server certificate. */
  caFile: string;
  clients: Record<'good' | 'device' | 'other' | 'expired' | 'notYet' | 'revoked' | 'suspended' | 'sha1' | 'weak' | 'explicitEc' | 'rsaE3' | 'wrongEku' | 'unknown' | 'victim', ClientFiles>;
  close(): Promise<void>;
}

async function issueTo(ca: CertificateAuthority, dir: string, name: string, order: Parameters<CertificateAuthority['issueWithNewKey']>[0]): Promise<ClientFiles> {
  const issued = await ca.issueWithNewKey(order);
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  writeFileSync(cert, certificateToPem(issued.der) + certificateToPem(ca.chain()[0]!));
  writeFileSync(key, issued.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
  return { cert, key, serial: issued.serial };
}

function openssl(args: string[]): void {
  const r = run('openssl', args);
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
}

export async function gatewayFixture(): Promise<GatewayFixture> {
  const dir = tempDir('sekisho-gw-');
  const home = join(dir, 'home');
  await initAuthority({ home, passphrase: PASSPHRASE });
  const ca = await CertificateAuthority.open({ home });
  await ca.unlock(PASSPHRASE);
  await ca.addFacility({ number: FACILITY_A, name: 'はこだて内科クリニック' }, 'test');
  await ca.addFacility({ number: FACILITY_B, name: '東京薬局' }, 'test');
  await ca.addFacility({ number: FACILITY_C, name: '大阪病院' }, 'test');
  const base = { via: 'test', actor: 'test', keyType: 'ecdsa-p256' as const };
  const caFile = join(dir, 'ca-chain.pem');
  writeFileSync(caFile, ca.chain().map(certificateToPem).join(''));

  const good = await issueTo(ca, dir, 'good', { ...base, profile: 'facility', facilityNumber: FACILITY_A });
  const device = await issueTo(ca, dir, 'device', { ...base, profile: 'device', facilityNumber: FACILITY_A, deviceName: 'レセプト端末-01' });
  const other = await issueTo(ca, dir, 'other', { ...base, profile: 'facility', facilityNumber: FACILITY_C });
  const revoked = await issueTo(ca, dir, 'revoked', { ...base, profile: 'facility', facilityNumber: FACILITY_A });
  await ca.revoke(revoked.serial!, 'keyCompromise', 'test');
  const victim = await issueTo(ca, dir, 'victim', { ...base, profile: 'facility', facilityNumber: FACILITY_A });
  const suspended = await issueTo(ca, dir, 'suspended', { ...base, profile: 'facility', facilityNumber: FACILITY_B });
  await ca.setFacilityStatus(FACILITY_B, 'suspended', 'test');
  const wrongEku = await issueTo(ca, dir, 'wrong-eku', { ...base, profile: 'server', hosts: ['clinic.example'] });

  // Validity in the past and in the future: the same CA, opened with another clock.
  const dayMs = 86_400_000;
  const past = await CertificateAuthority.open({ home, now: () => new Date(Date.now() - 10 * dayMs) });
  await past.unlock(PASSPHRASE);
  const expired = await issueTo(past, dir, 'expired', { ...base, profile: 'facility', facilityNumber: FACILITY_A, validityDays: 2 });
  await past.close();
  const future = await CertificateAuthority.open({ home, now: () => new Date(Date.now() + 10 * dayMs) });
  await future.unlock(PASSPHRASE);
  const notYet = await issueTo(future, dir, 'not-yet', { ...base, profile: 'facility', facilityNumber: FACILITY_A });
  await future.close();

  // Certificates our CA would never issue, signed with its key by openssl: SHA-1, and RSA-1024.
  const issuingKey = join(dir, 'issuing.key');
  writeFileSync(issuingKey, (await readKeyFile(ca.paths.issuingKey, PASSPHRASE)).export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
  const ext = join(dir, 'client.ext');
  writeFileSync(ext, 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n');
  const forged = (name: string, keyArgs: string[], digest: string, makeKey?: (key: string) => void): ClientFiles => {
    const key = join(dir, `${name}.key`);
    const csr = join(dir, `${name}.csr`);
    const cert = join(dir, `${name}.pem`);
    if (makeKey) {
      makeKey(key);
      openssl(['req', '-new', '-key', key, '-out', csr, '-subj', `/C=JP/O=Forged/CN=${FACILITY_A}`]);
    } else openssl(['req', '-new', '-newkey', ...keyArgs, '-nodes', '-keyout', key, '-out', csr, '-subj', `/C=JP/O=Forged/CN=${FACILITY_A}`]);
    openssl(['x509', '-req', '-in', csr, '-CA', ca.paths.issuingCert, '-CAkey', issuingKey, '-set_serial', '0x' + Math.floor(Math.random() * 2 ** 40).toString(16), '-days', '30', `-${digest}`, '-extfile', ext, '-out', cert]);
    writeFileSync(cert, `${run('cat', [cert]).stdout}${certificateToPem(ca.chain()[0]!)}`);
    return { cert, key };
  };
  const sha1 = forged('sha1', ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], 'sha1');
  const weak = forged('weak', ['rsa:1024'], 'sha256');
  // Keys in forms RFC 5480 / the BR refuse: explicit EC curve parameters, and RSA with e = 3.
  const explicitEc = forged('explicit-ec', [], 'sha256', (key) => openssl(['ecparam', '-name', 'prime256v1', '-param_enc', 'explicit', '-genkey', '-noout', '-out', key]));
  const rsaE3 = forged('rsa-e3', [], 'sha256', (key) => openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-pkeyopt', 'rsa_keygen_pubexp:3', '-out', key]));

  // A stranger's CA.
  const uKey = join(dir, 'unknown-ca.key');
  const uCa = join(dir, 'unknown-ca.pem');
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', uKey, '-out', uCa, '-subj', '/CN=Stranger CA', '-days', '30']);
  const unknownKey = join(dir, 'unknown.key');
  const unknownCsr = join(dir, 'unknown.csr');
  const unknownCert = join(dir, 'unknown.pem');
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', unknownKey, '-out', unknownCsr, '-subj', `/C=JP/O=Stranger/CN=${FACILITY_A}`]);
  openssl(['x509', '-req', '-in', unknownCsr, '-CA', uCa, '-CAkey', uKey, '-set_serial', '7', '-days', '30', '-sha256', '-extfile', ext, '-out', unknownCert]);

  return {
    dir,
    home,
    ca,
    caFile,
    clients: { good, device, other, expired, notYet, revoked, suspended, sha1, weak, explicitEc, rsaE3, wrongEku, unknown: { cert: unknownCert, key: unknownKey }, victim },
    close: () => ca.close(),
  };
}

/** A clinic's credential held in memory: its certificate (with the issuing CA) and key as PEM. */
export interface Client {
  serial: string;
  cert: string;
  key: string;
}

/** A facility certificate issued now with a fresh key. */
export async function issueClient(ca: CertificateAuthority, facility: string): Promise<Client> {
  const issued = await ca.issueWithNewKey({ via: 'test', actor: 'test', keyType: 'ecdsa-p256', profile: 'facility', facilityNumber: facility });
  return {
    serial: issued.serial,
    cert: certificateToPem(issued.der) + certificateToPem(ca.chain()[0]!),
    key: issued.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
  };
}

/**
 * One GET / as the clinic on a new connection (a full mutual-TLS handshake,
 * Node's TLS client): the status, the gateway's refusal reason if it
 * refused, and how long it took. Fails after `timeoutMs` without an answer.
 */
export function askGateway(o: { port: number; caPem: string; client: Pick<Client, 'cert' | 'key'>; timeoutMs: number }): Promise<{ status: number; refusal?: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port: o.port, path: '/', servername: 'localhost', ca: o.caPem, cert: o.client.cert, key: o.client.key, agent: false, timeout: o.timeoutMs }, (res) => {
      res.resume();
      const refusal = res.headers['x-sekisho-refusal'];
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ...(typeof refusal === 'string' ? { refusal } : {}), ms: performance.now() - started }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

/**
 * A gateway following the store of `home` (its feed polled every 0.2 s),
 * with one HTTP listener in front of an echo upstream; `close()` stops both.
 */
export async function homeGateway(home: string, passphrase: string): Promise<{ setup: GatewaySetup; port: number; close(): Promise<void> }> {
  const upstream = await echoUpstream();
  const cfg = parseGatewayConfig({
    home,
    revocation: { refreshSeconds: 0.2 },
    listeners: [{ name: 'web', listen: '127.0.0.1:0', routes: [{ path: '/', upstream: `http://127.0.0.1:${upstream.port}`, allow: { anyone: true } }] }],
  });
  try {
    const setup = await openGateway(cfg, { passphrase: async () => passphrase, log: jsonLogger('error', () => undefined), watch: false });
    return {
      setup,
      port: setup.gateway.addresses()[0]!.port,
      close: async () => {
        await setup.close(1000);
        upstream.server.close();
      },
    };
  } catch (e) {
    upstream.server.close();
    throw e;
  }
}

/** An HTTP upstream that answers each request with the headers it received, as JSON. */
export async function echoUpstream(): Promise<{ server: HttpServer; port: number; seen: Record<string, string | string[] | undefined>[] }> {
  const seen: Record<string, string | string[] | undefined>[] = [];
  const server = createHttpServer((req, res) => {
    seen.push(req.headers);
    const body = JSON.stringify({ path: req.url, headers: req.headers });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port, seen };
}

/** A TCP upstream speaking HL7 MLLP (0x0b … 0x1c 0x0d): reads a PROXY v2 header, then acknowledges each message naming the facility. */
export async function mllpUpstream(): Promise<{ server: NetServer; port: number; identities: Record<string, unknown>[] }> {
  const identities: Record<string, unknown>[] = [];
  const server = createNetServer((s) => {
    let buf = Buffer.alloc(0);
    let identity: Record<string, unknown> | undefined;
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!identity) {
        const h = parseProxyV2(buf);
        if (!h) return;
        identity = JSON.parse(h.tlvs.get(PP2_TYPE_SEKISHO_IDENTITY)!.toString()) as Record<string, unknown>;
        identities.push({ ...identity, source: h.source });
        buf = buf.subarray(h.length);
      }
      for (let end = buf.indexOf(0x1c); end >= 0 && buf[end + 1] === 0x0d; end = buf.indexOf(0x1c)) {
        const msg = buf.subarray(1, end).toString();
        buf = buf.subarray(end + 2);
        const control = /MSH\|[^|]*\|(?:[^|]*\|){7}([^|]*)/.exec(msg)?.[1] ?? '';
        s.write(`\x0bMSH|^~\\&|CENTER|SEKISHO|||||ACK|${control}|P|2.5\rMSA|AA|${control}|from ${String(identity.facilityNumber)}\x1c\x0d`);
      }
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port, identities };
}
