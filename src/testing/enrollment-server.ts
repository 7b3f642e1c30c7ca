/**
 * A CA in a temporary home plus the enrollment server (web/) over HTTPS on a
 * free loopback port, for tests of the portal, EST, CRL/OCSP and for the
 * gateway's tests that need a live CA. The server certificate is issued by
 * the CA itself (profile server, localhost + 127.0.0.1), so a client trusts
 * it with `rootFile` (curl --cacert, openssl -CAfile, Node `ca`).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CertificateAuthority, checkCharacter, type CaConfig, compactNoticeId, homePaths, initAuthority, NOTICE_ID_ALPHABET, type CreatedNotice, type NoticeIdKind, type NoticesConfig, type RenewalConfig } from '../ca/index.js';
import { certificateToPem } from '../pki/index.js';
import { startWebServer, type RateLimitOptions, type WebServer } from '../web/index.js';
import { tempDir } from './stores.js';
import { runAsync, type RunResult } from './peers.js';

export const TEST_PASSPHRASE = 'enrollment-test-passphrase';
export const TEST_FACILITY = { number: '0110113719', name: 'はこだてクリニック' } as const;

export interface TestEnrollment {
  home: string;
  /** A scratch directory for the test's files (holds root.pem and chain.pem). */
  dir: string;
  ca: CertificateAuthority;
  server: WebServer;
  /** https://127.0.0.1:PORT/ */
  url: string;
  rootPem: string;
  /** root.pem on disk (curl --cacert). */
  rootFile: string;
  /** issuing + root PEM on disk. */
  chainFile: string;
  /** A fresh notice for the test facility. */
  notice(o?: { kind?: 'letter' | 'est-code'; validityDays?: number; deviceName?: string; maxDownloads?: number }): Promise<CreatedNotice>;
  close(): Promise<void>;
}

export async function startTestEnrollment(o: { db?: string; rateLimit?: RateLimitOptions; now?: () => Date; facility?: boolean; renewal?: Partial<RenewalConfig>; notices?: Partial<NoticesConfig>; pkcs12?: Partial<CaConfig['pkcs12']> } = {}): Promise<TestEnrollment> {
  const dir = tempDir('sekisho-enroll-');
  const home = join(dir, 'home');
  await initAuthority({ home, passphrase: TEST_PASSPHRASE, ...(o.db ? { db: o.db } : {}), ...(o.now ? { now: o.now } : {}) });
  if (o.renewal || o.notices || o.pkcs12) {
    const file = homePaths(home).config;
    const config = JSON.parse(readFileSync(file, 'utf8')) as { renewal?: Partial<RenewalConfig>; notices?: Partial<NoticesConfig>; pkcs12?: Partial<CaConfig['pkcs12']> };
    writeFileSync(
      file,
      JSON.stringify({ ...config, ...(o.renewal ? { renewal: { ...config.renewal, ...o.renewal } } : {}), ...(o.notices ? { notices: { ...config.notices, ...o.notices } } : {}), ...(o.pkcs12 ? { pkcs12: { ...config.pkcs12, ...o.pkcs12 } } : {}) }),
    );
  }
  const ca = await CertificateAuthority.open({ home, ...(o.now ? { now: o.now } : {}) });
  try {
    await ca.unlock(TEST_PASSPHRASE);
    if (o.facility !== false) await ca.addFacility({ ...TEST_FACILITY }, 'operator:test');
    const tls = await ca.issueWithNewKey({ profile: 'server', hosts: ['localhost', '127.0.0.1'], keyType: 'ecdsa-p256', via: 'test', actor: 'operator:test' });
    const server = await startWebServer({
      authority: ca,
      listen: { host: '127.0.0.1', port: 0 },
      tls: { cert: certificateToPem(tls.der), key: tls.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, chain: [certificateToPem(ca.issuingDer)] },
      ...(o.rateLimit ? { rateLimit: o.rateLimit } : {}),
    });
    const rootPem = certificateToPem(ca.rootDer);
    const rootFile = join(dir, 'root.pem');
    const chainFile = join(dir, 'chain.pem');
    writeFileSync(rootFile, rootPem);
    writeFileSync(chainFile, ca.chain().map(certificateToPem).join(''));
    return {
      home,
      dir,
      ca,
      server,
      url: server.url,
      rootPem,
      rootFile,
      chainFile,
      notice: (n = {}) => ca.notices.create({ facilityNumber: TEST_FACILITY.number, actor: 'operator:test', ...n }),
      async close() {
        await server.close();
        await ca.close();
      },
    };
  } catch (e) {
    await ca.close();
    throw e;
  }
}

/** Runs a peer without blocking the event loop (the server under test lives in this process): peers.ts runAsync. */
export function runPeer(cmd: string, args: string[], input?: string | Buffer, env?: NodeJS.ProcessEnv): Promise<RunResult> {
  return runAsync(cmd, args, { ...(input !== undefined ? { input } : {}), ...(env ? { env } : {}), timeoutMs: 120_000 });
}

/**
 * A notice ID with a wrong check character that is not the other kind's
 * either, so it reads as a typo and never as swapped IDs (a fixed letter
 * would be the other kind's check character once in 26 runs).
 */
export function withTypo(kind: NoticeIdKind, id: string): string {
  const data = compactNoticeId(id).slice(0, -1);
  const avoid = new Set([checkCharacter(kind, data), checkCharacter(kind === 'request' ? 'reference' : 'request', data)]);
  return id.slice(0, -1) + [...NOTICE_ID_ALPHABET].find((c) => !avoid.has(c))!;
}

/** One HTTPS request to the server under test, trusting its root; with `client`, on a connection of its own presenting that PKCS#12. */
export function fetchTls(url: string | URL, o: { ca: string; method?: string; headers?: Record<string, string>; body?: string | Buffer; client?: { pfx: Buffer; passphrase: string } }): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method: o.method ?? 'GET', headers: o.headers ?? {}, ca: o.ca, ...(o.client ? { pfx: o.client.pfx, passphrase: o.client.passphrase, agent: false } : {}) }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        const body = Buffer.concat(parts);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8') });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(o.body);
  });
}
