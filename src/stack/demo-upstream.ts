import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { IDENTITY_HEADERS } from '../gateway/index.js';

/**
 * The demo center's service behind the gateway: a plain HTTP server on a
 * loopback port that answers who called it, in Japanese and English, from the
 * identity headers the gateway sets (facility number and name, device,
 * certificate serial). With `Accept: application/json` the same as JSON.
 * It trusts those headers because it listens on loopback only (a demo on one
 * machine); a real upstream must listen where only the gateway reaches it.
 */
export interface DemoUpstream {
  /** http://127.0.0.1:PORT */
  url: string;
  close(): Promise<void>;
}

export interface Caller {
  facilityNumber: string | null;
  facilityName: string | null;
  deviceName: string | null;
  profile: string | null;
  serial: string | null;
}

function header(req: IncomingMessage, name: string, encoded = false): string | null {
  const v = req.headers[name];
  if (typeof v !== 'string' || !v) return null;
  if (!encoded) return v;
  try {
    return decodeURIComponent(v);
  } catch {
    return v;
  }
}

export function callerOf(req: IncomingMessage): Caller {
  return {
    facilityNumber: header(req, IDENTITY_HEADERS.facilityNumber),
    facilityName: header(req, IDENTITY_HEADERS.facilityName, true),
    deviceName: header(req, IDENTITY_HEADERS.deviceName, true),
    profile: header(req, IDENTITY_HEADERS.profile),
    serial: header(req, IDENTITY_HEADERS.serial),
  };
}

/** The greeting, Japanese first, then English. */
export function greeting(c: Caller): string {
  if (!c.serial) {
    return ['このサービスは sekisho ゲートウェイの内側にあります。ゲートウェイ経由でアクセスしてください。', 'This service sits behind the sekisho gateway; call it through the gateway.', ''].join('\n');
  }
  const who = c.facilityName ?? c.deviceName ?? '(名称なし)';
  const whoEn = c.facilityName ?? c.deviceName ?? '(no name)';
  const device = c.deviceName && c.facilityName ? `（端末 ${c.deviceName}）` : '';
  const deviceEn = c.deviceName && c.facilityName ? ` (device ${c.deviceName})` : '';
  return [
    `ようこそ、${who}${device} さん。医療機関番号 ${c.facilityNumber ?? '-'}、証明書シリアル ${c.serial} で認証されました。`,
    `Welcome, ${whoEn}${deviceEn}: authenticated as facility ${c.facilityNumber ?? '-'} with certificate serial ${c.serial}.`,
    '',
  ].join('\n');
}

/** Starts the demo upstream on 127.0.0.1 (port 0: a free one). */
export async function startDemoUpstream(port = 0): Promise<DemoUpstream> {
  const server: Server = createServer((req, res) => {
    const caller = callerOf(req);
    req.resume();
    if (/application\/json/.test(String(req.headers.accept ?? ''))) {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
      res.end(JSON.stringify({ ...caller, message: greeting(caller).trim().split('\n') }) + '\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
    res.end(greeting(caller));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${a.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
