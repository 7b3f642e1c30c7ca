import type { IncomingHttpHeaders } from 'node:http';
import { certificateToPem } from '../pki/index.js';
import { startConsoleServer, type ConsoleServer } from '../console/index.js';
import type { OperatorRole } from '../store/index.js';
import { fetchTls, startTestEnrollment, type TestEnrollment } from './enrollment-server.js';

export const OPERATOR_P12_PASSWORD = 'operator-p12-password';

/** A client credential for requests: PKCS#12 and its password (Node's https takes it as pfx). */
export interface TestClient {
  pfx: Buffer;
  passphrase: string;
  serial: string;
}

export interface TestConsole {
  enrollment: TestEnrollment;
  server: ConsoleServer;
  url: string;
  /** Adds an operator and returns its credential. */
  operator(name: string, role: OperatorRole): Promise<TestClient>;
  /** A facility certificate from the same CA (for "gets no console"). */
  facilityClient(): Promise<TestClient>;
  request(path: string, o?: { client?: TestClient; method?: string; headers?: Record<string, string>; body?: string }): Promise<{ status: number; headers: IncomingHttpHeaders; text: string; body: Buffer }>;
  close(): Promise<void>;
}

/**
 * A CA (with the portal, startTestEnrollment) and its console on a free
 * loopback port, with the same server certificate; `chromium` prints letters.
 */
export async function startTestConsole(o: { db?: string; chromium?: string } = {}): Promise<TestConsole> {
  const enrollment = await startTestEnrollment(o.db ? { db: o.db } : {});
  const ca = enrollment.ca;
  try {
    const tls = await ca.issueWithNewKey({ profile: 'server', hosts: ['localhost', '127.0.0.1'], keyType: 'ecdsa-p256', via: 'test', actor: 'operator:test' });
    const server = await startConsoleServer({
      authority: ca,
      listen: { host: '127.0.0.1', port: 0 },
      tls: { cert: certificateToPem(tls.der), key: tls.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, chain: [certificateToPem(ca.issuingDer)] },
      portalUrl: enrollment.url,
      ...(o.chromium ? { chromium: o.chromium } : {}),
      log: { log: () => undefined },
    });
    const url = `https://localhost:${server.address.port}/`;
    return {
      enrollment,
      server,
      url,
      async operator(name, role) {
        const r = await ca.addOperator({ name, role }, OPERATOR_P12_PASSWORD, 'operator:test');
        return { pfx: r.pkcs12, passphrase: OPERATOR_P12_PASSWORD, serial: r.certificate.serial };
      },
      async facilityClient() {
        const r = await ca.issuePkcs12({ profile: 'facility', facilityNumber: '0110113719', keyType: 'ecdsa-p256', via: 'test', actor: 'operator:test' }, OPERATOR_P12_PASSWORD);
        return { pfx: r.pkcs12, passphrase: OPERATOR_P12_PASSWORD, serial: r.serial };
      },
      request(path, r = {}) {
        return fetchTls(new URL(path, url), { ca: enrollment.rootPem, ...r });
      },
      async close() {
        await server.close();
        await enrollment.close();
      },
    };
  } catch (e) {
    await enrollment.close();
    throw e;
  }
}
