/** Steps 1–2: the center's name resolves, and a TCP connection reaches it (directly, or through the clinic's HTTP proxy with CONNECT). */
import { lookup } from 'node:dns/promises';
import { connect, isIP, type Socket } from 'node:net';
import { fail, ok, warn, type StepResult } from './result.js';
import type { DoctorTarget } from './target.js';

export async function dnsStep(t: DoctorTarget): Promise<StepResult> {
  const host = t.center.host;
  if (isIP(host)) return ok('dns', 'DNS_IP_ADDRESS', { ja: `接続先はIPアドレス（${host}）なので、名前解決は不要です。`, en: `the center is given as an IP address (${host}); no name to resolve` }, { host });
  try {
    const addrs = await (t.lookup ?? ((h: string) => lookup(h, { all: true })))(host);
    return ok('dns', 'DNS_OK', { ja: `${host} は ${addrs.map((a) => a.address).join(', ')} に解決できました。`, en: `${host} resolves to ${addrs.map((a) => a.address).join(', ')}` }, { host, addresses: addrs.map((a) => a.address) });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    if (t.httpProxy) {
      return warn(
        'dns',
        'DNS_LOCAL_FAILED_PROXY',
        { ja: `この端末では ${host} を名前解決できません（${code}）。プロキシ経由なので、プロキシ側で解決できれば接続できます。`, en: `${host} does not resolve here (${code}); through the HTTP proxy, the proxy resolves it` },
        { ja: '次の「TCP」の結果を確認してください。', en: 'see the "tcp" step' },
        { host, error: code },
      );
    }
    return fail(
      'dns',
      'DNS_FAILED',
      { ja: `運営主体のサーバー名 ${host} を名前解決できません（${code}）。`, en: `the center's name ${host} does not resolve (${code})` },
      { ja: 'サーバー名の綴り（設定の center.gateway）と、この端末のDNS設定を確認してください。院内ネットワークでは担当ベンダーに確認してください。', en: 'check the spelling of the name (center.gateway) and this machine\'s DNS settings; on a clinic network, ask your vendor' },
      { host, error: code },
    );
  }
}

/** A socket to the center: direct, or a tunnel through the HTTP proxy. Resolves with the socket or rejects with a coded reason. */
export function openTunnel(t: DoctorTarget, timeoutMs: number): Promise<Socket> {
  const proxy = t.httpProxy;
  const to = proxy ? { host: proxy.hostname.replace(/^\[|\]$/g, ''), port: Number(proxy.port || 80) } : t.center;
  return new Promise((resolve, reject) => {
    const s = connect(to);
    const timer = setTimeout(() => {
      s.destroy();
      reject(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT', proxy: Boolean(proxy) }));
    }, timeoutMs);
    s.once('error', (e) => {
      clearTimeout(timer);
      reject(Object.assign(e, { proxy: Boolean(proxy) }));
    });
    s.once('connect', () => {
      if (!proxy) {
        clearTimeout(timer);
        s.removeAllListeners('error');
        return resolve(s);
      }
      const target = `${isIP(t.center.host) === 6 ? `[${t.center.host}]` : t.center.host}:${t.center.port}`;
      s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
      let head = Buffer.alloc(0);
      const onData = (d: Buffer) => {
        head = Buffer.concat([head, d]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) {
          if (head.length > 16384) s.destroy();
          return;
        }
        clearTimeout(timer);
        s.off('data', onData);
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head.toString('latin1'))?.[1] ?? 0);
        if (status !== 200) {
          s.destroy();
          return reject(Object.assign(new Error(`proxy answered ${status || 'garbage'}`), { code: 'PROXY_REFUSED', status, proxy: true }));
        }
        const rest = head.subarray(end + 4);
        if (rest.length) s.unshift(rest);
        s.removeAllListeners('error');
        resolve(s);
      };
      s.on('data', onData);
    });
  });
}

export async function tcpStep(t: DoctorTarget, timeoutMs: number): Promise<StepResult> {
  const where = `${t.center.host}:${t.center.port}`;
  const via = t.httpProxy ? { ja: `（プロキシ ${t.httpProxy.host} 経由）`, en: ` through the proxy ${t.httpProxy.host}` } : { ja: '', en: '' };
  try {
    const s = await openTunnel(t, timeoutMs);
    s.destroy();
    return ok('tcp', 'TCP_OK', { ja: `${where} にTCPで接続できました${via.ja}。`, en: `a TCP connection to ${where} opened${via.en}` }, { center: where, ...(t.httpProxy ? { proxy: t.httpProxy.host } : {}) });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { proxy?: boolean; status?: number };
    const code = err.code ?? 'error';
    const details = { center: where, error: code, ...(t.httpProxy ? { proxy: t.httpProxy.host } : {}), ...(err.status ? { proxyStatus: err.status } : {}) };
    if (code === 'PROXY_REFUSED') {
      return fail(
        'tcp',
        'PROXY_CONNECT_REFUSED',
        { ja: `プロキシ ${t.httpProxy!.host} が ${where} への接続（CONNECT）を拒否しました（HTTP ${err.status}）。`, en: `the proxy ${t.httpProxy!.host} refused CONNECT to ${where} (HTTP ${err.status})` },
        { ja: `プロキシの管理者に、${where} へのCONNECTを許可するよう依頼してください（認証が必要なプロキシには対応していません）。`, en: `ask the proxy's administrator to allow CONNECT to ${where} (proxies that need authentication are not supported)` },
        details,
      );
    }
    if (err.proxy && (code === 'ECONNREFUSED' || code === 'ETIMEDOUT' || code === 'EHOSTUNREACH' || code === 'ENOTFOUND')) {
      return fail(
        'tcp',
        'PROXY_UNREACHABLE',
        { ja: `プロキシ ${t.httpProxy!.host} に接続できません（${code}）。`, en: `the proxy ${t.httpProxy!.host} cannot be reached (${code})` },
        { ja: 'プロキシのアドレスとポート（--http-proxy）を確認してください。', en: 'check the proxy address and port (--http-proxy)' },
        details,
      );
    }
    if (code === 'ECONNREFUSED') {
      return fail(
        'tcp',
        'TCP_REFUSED',
        { ja: `${where} は接続を拒否しました（そのポートで待ち受けているサーバーがありません）。`, en: `${where} refused the connection (nothing listens on that port)` },
        { ja: 'ポート番号（設定の center.gateway）を確認し、運営主体にサーバーが稼働しているか問い合わせてください。', en: 'check the port (center.gateway) and ask the network operator whether the gateway is running' },
        details,
      );
    }
    return fail(
      'tcp',
      code === 'ETIMEDOUT' ? 'TCP_TIMEOUT' : 'TCP_UNREACHABLE',
      { ja: `${where} に接続できません（${code}）。`, en: `${where} cannot be reached (${code})` },
      { ja: 'ファイアウォールやルーターが通信を止めていないか、院内ネットワークの担当ベンダーに確認してください。プロキシが必要な環境では --http-proxy を指定してください。', en: 'a firewall or router may block the connection: ask your network vendor; where a proxy is required, give --http-proxy' },
      details,
    );
  }
}
