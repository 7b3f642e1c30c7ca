/**
 * A service center for the facility agent's tests: the CA of the gateway
 * fixture, the real gateway (HTTP listener to an echo upstream, TCP listener
 * to an HL7 MLLP upstream), the EST server for renewal, the root certificate
 * file and its thumbprint (what the notice letter prints), and tokens loaded
 * with a facility credential.
 */
import { createHash, createPrivateKey } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { CertificateAuthority } from '../ca/index.js';
import { openGateway, parseGatewayConfig, jsonLogger, type GatewaySetup } from '../gateway/index.js';
import { certificatesFromPem, certificateToPem } from '../pki/index.js';
import { replaceCertificate, type TokenSession } from '../token/index.js';
import { startWebServer, type WebServer } from '../web/index.js';
import { echoUpstream, FACILITY_A, gatewayFixture, mllpUpstream, PASSPHRASE, type ClientFiles, type GatewayFixture } from './gateway-fixture.js';

export interface AgentCenter {
  fx: GatewayFixture;
  setup: GatewaySetup;
  est: WebServer;
  http: Awaited<ReturnType<typeof echoUpstream>>;
  mllp: Awaited<ReturnType<typeof mllpUpstream>>;
  gatewayPort: number;
  tcpPort: number;
  rootFile: string;
  thumbprint: string;
  /** A facility certificate (and key) valid from 10 days ago for `days` days: inside the renewal window. */
  shortLived(days?: number): Promise<ClientFiles>;
  close(): Promise<void>;
}

export async function startAgentCenter(): Promise<AgentCenter> {
  const fx = await gatewayFixture();
  const http = await echoUpstream();
  const mllp = await mllpUpstream();
  const cfg = parseGatewayConfig({
    home: fx.home,
    refusals: { intervalSeconds: 1 },
    listeners: [
      { name: 'web', mode: 'http', listen: '127.0.0.1:0', routes: [{ path: '/', upstream: `http://127.0.0.1:${http.port}`, allow: { anyone: true } }] },
      { name: 'hl7', mode: 'tcp', listen: '127.0.0.1:0', upstream: `tcp://127.0.0.1:${mllp.port}`, proxyProtocol: true, allow: { profiles: ['facility', 'device'] } },
    ],
  });
  const setup = await openGateway(cfg, { passphrase: async () => PASSPHRASE, log: jsonLogger('error', () => undefined), watch: false });
  const tlsCred = await fx.ca.issueWithNewKey({ profile: 'server', hosts: ['localhost', '127.0.0.1'], keyType: 'ecdsa-p256', via: 'test', actor: 'operator:test' });
  const est = await startWebServer({
    authority: fx.ca,
    listen: { host: '127.0.0.1', port: 0 },
    tls: { cert: certificateToPem(tlsCred.der), key: tlsCred.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, chain: [certificateToPem(fx.ca.issuingDer)] },
    log: { log: () => undefined },
  });
  const rootFile = join(fx.dir, 'root.pem');
  writeFileSync(rootFile, certificateToPem(fx.ca.rootDer));
  let n = 0;
  return {
    fx,
    setup,
    est,
    http,
    mllp,
    gatewayPort: setup.gateway.addresses().find((a) => a.name === 'web')!.port,
    tcpPort: setup.gateway.addresses().find((a) => a.name === 'hl7')!.port,
    rootFile,
    thumbprint: createHash('sha256').update(fx.ca.rootDer).digest('hex'),
    async shortLived(days = 12) {
      const past = await CertificateAuthority.open({ home: fx.home, now: () => new Date(Date.now() - 10 * 86_400_000) });
      try {
        await past.unlock(PASSPHRASE);
        const issued = await past.issueWithNewKey({ profile: 'facility', facilityNumber: FACILITY_A, keyType: 'ecdsa-p256', via: 'test', actor: 'test', validityDays: days });
        const cert = join(fx.dir, `short-${++n}.pem`);
        const key = join(fx.dir, `short-${n}.key`);
        writeFileSync(cert, certificateToPem(issued.der));
        writeFileSync(key, issued.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
        return { cert, key, serial: issued.serial };
      } finally {
        await past.close();
      }
    },
    async close() {
      await est.close();
      await setup.close(1000);
      http.server.close();
      mllp.server.close();
      await fx.close();
    },
  };
}

/** Writes a client's key and certificate (and the issuing CA certificate) into a logged-in token session under `label`. */
export async function loadCredential(session: TokenSession, client: ClientFiles, label: string, issuingDer: Buffer): Promise<void> {
  const key = createPrivateKey(readFileSync(client.key));
  await session.importPrivateKey(key, { label });
  const [leaf] = certificatesFromPem(readFileSync(client.cert, 'utf8'));
  await replaceCertificate(session, leaf!, label);
  if (!(await session.findObjects({ class: 'certificate', label: 'issuing CA' })).length) await session.createObject({ class: 'certificate', label: 'issuing CA', id: Buffer.from('ca1'), value: issuingDer });
}

/** One HL7 MLLP exchange on an open socket: sends a message with `control`, resolves with the acknowledgement text. */
export function mllpExchange(s: Socket, control: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\x1c\x0d');
      if (end >= 0) {
        s.off('data', onData);
        s.off('error', reject);
        resolve(Buffer.from(buf.slice(1, end), 'latin1').toString('utf8'));
      }
    };
    s.on('data', onData);
    s.once('error', reject);
    s.write(`\x0bMSH|^~\\&|CLINIC|A|CENTER|B|20261207||ADT^A01|${control}|P|2.5\rPID|1||12345\x1c\x0d`);
  });
}

export function connectLocal(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}
