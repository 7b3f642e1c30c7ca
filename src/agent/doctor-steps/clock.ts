/**
 * Step 8: this machine's clock against the center's. The center's time is
 * the HTTP Date header of its answer: the gateway's (over mutual TLS with the
 * facility's credential, when the token step passed), else a plain HTTPS
 * answer, else the center's OCSP responder. Date has one-second resolution;
 * the skew is reported in seconds. Over 5 minutes, certificate and OCSP
 * validity checks break (a certificate looks not yet valid or expired).
 */
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { isIP } from 'node:net';
import { fetchHttp } from '../../scan/index.js';
import { fail, ok, warn, type StepResult } from './result.js';
import type { DoctorTarget } from './target.js';

export const CLOCK_WARN_MS = 60_000;
export const CLOCK_FAIL_MS = 5 * 60_000;

export interface ClockSource {
  source: 'gateway-http-date' | 'https-date' | 'ocsp-http-date';
  date: string;
  /** Local time when the answer arrived. */
  at: Date;
}

/** GET / over TLS with the given options (e.g. the facility's secure context); the Date header, if any. */
export function httpsDate(t: DoctorTarget, tls: ConnectionOptions, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = tlsConnect({ host: t.center.host, port: t.center.port, ...(isIP(t.serverName) ? {} : { servername: t.serverName }), rejectUnauthorized: false, ...tls });
    let data = '';
    const done = (v: string | undefined) => {
      clearTimeout(timer);
      s.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    s.on('secureConnect', () => s.write(`GET / HTTP/1.1\r\nHost: ${t.serverName}\r\nConnection: close\r\nUser-Agent: sekisho-doctor\r\n\r\n`));
    s.on('data', (d: Buffer) => {
      data += d.toString('latin1');
      const end = data.indexOf('\r\n\r\n');
      if (end >= 0) done(/^date:\s*(.+?)\r?$/im.exec(data.slice(0, end))?.[1]);
    });
    s.on('error', () => done(undefined));
    s.on('close', () => done(undefined));
  });
}

export async function plainHttpsDate(t: DoctorTarget, timeoutMs: number): Promise<string | undefined> {
  if (t.httpProxy) return undefined;
  const a = await fetchHttp({ host: t.center.host, port: t.center.port, ...(isIP(t.serverName) ? {} : { serverName: t.serverName }) }, undefined, timeoutMs);
  return a ? /^date:\s*(.+?)\r?$/im.exec(a.headers)?.[1] : undefined;
}

export function clockStep(src: ClockSource | undefined, now: () => Date): StepResult {
  if (!src) {
    return warn(
      'clock',
      'CLOCK_NOT_CHECKED',
      { ja: '運営主体の時刻を取得できなかったため、時刻のずれを確認できませんでした。', en: 'the center\'s time could not be read, so the clock was not compared' },
      { ja: 'この端末がNTPで時刻を合わせているか確認してください（5分以上ずれると証明書の検証に失敗します）。', en: 'make sure this machine keeps its clock with NTP (over 5 minutes off breaks certificate validation)' },
    );
  }
  const center = new Date(src.date);
  if (Number.isNaN(center.getTime())) {
    return warn('clock', 'CLOCK_NOT_CHECKED', { ja: `運営主体の時刻（${src.date.slice(0, 40)}）を読めませんでした。`, en: `the center's Date (${src.date.slice(0, 40)}) cannot be read` }, { ja: 'この端末の時刻をNTPで合わせてください。', en: 'keep this machine\'s clock with NTP' });
  }
  // Date is whole seconds: the center's clock read between `center` and `center + 1 s`.
  const skewMs = src.at.getTime() - (center.getTime() + 500);
  const abs = Math.abs(skewMs);
  const seconds = Math.round(skewMs / 1000);
  const dir = skewMs > 0 ? { ja: '進んで', en: 'ahead of' } : { ja: '遅れて', en: 'behind' };
  const details = { source: src.source, centerDate: center.toISOString(), local: src.at.toISOString(), skewSeconds: seconds };
  void now;
  if (abs > CLOCK_FAIL_MS) {
    return fail(
      'clock',
      'CLOCK_SKEW',
      { ja: `この端末の時刻は運営主体より約${Math.abs(seconds)}秒${dir.ja}います。5分以上のずれがあると、証明書や失効情報の検証に失敗します。`, en: `this machine's clock is about ${Math.abs(seconds)} s ${dir.en} the center's; over 5 minutes breaks certificate and revocation validation` },
      { ja: 'この端末の時刻をNTPで合わせてください（Windows: 「日付と時刻」→「今すぐ同期」、Linux: timedatectl / chrony）。', en: 'set this machine\'s clock with NTP (Windows: Date & time → Sync now; Linux: timedatectl / chrony)' },
      details,
    );
  }
  if (abs > CLOCK_WARN_MS) {
    return warn(
      'clock',
      'CLOCK_SKEW_SMALL',
      { ja: `この端末の時刻は運営主体より約${Math.abs(seconds)}秒${dir.ja}います（5分を超えると接続できなくなります）。`, en: `this machine's clock is about ${Math.abs(seconds)} s ${dir.en} the center's (over 5 minutes breaks validation)` },
      { ja: 'この端末の時刻をNTPで合わせてください。', en: 'set this machine\'s clock with NTP' },
      details,
    );
  }
  return ok('clock', 'CLOCK_OK', { ja: `この端末の時刻は運営主体とほぼ一致しています（ずれ約${Math.abs(seconds)}秒）。`, en: `this machine's clock agrees with the center's (about ${Math.abs(seconds)} s apart)` }, details);
}
