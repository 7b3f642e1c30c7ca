/**
 * What the agent tells the clinic, one stable code each, in Japanese and
 * English: in the JSON log, on /status, and in the answer an application
 * gets from the proxy.
 */
import { badRequest, forbidden, unauthorized, unavailable, type SekishoError } from '../errors/index.js';

/** The center refused the facility's certificate: the reason the gateway sent (x-sekisho-refusal), as the agent's code. */
const REFUSALS: Record<string, { code: string; en: string; ja: string }> = {
  REVOKED: {
    code: 'CERT_REVOKED',
    en: 'the center refused the facility certificate: it has been revoked. Ask the network operator for a new issuance notice; the agent cannot renew a revoked certificate.',
    ja: '運営主体が施設の証明書を拒否しました: 証明書は失効しています。運営主体に新しい発行通知書を依頼してください(失効した証明書は自動更新できません)。',
  },
  EXPIRED: {
    code: 'CERT_EXPIRED',
    en: 'the center refused the facility certificate: it has expired. Enroll again with a new issuance notice.',
    ja: '運営主体が施設の証明書を拒否しました: 有効期限が切れています。新しい発行通知書で再発行を受けてください。',
  },
  FACILITY_SUSPENDED: {
    code: 'FACILITY_SUSPENDED',
    en: 'the center refused the connection: the facility is suspended. Contact the network operator.',
    ja: '運営主体が接続を拒否しました: 施設の利用が停止されています。運営主体にお問い合わせください。',
  },
};

export function refusalMessage(reason: string): { code: string; en: string; ja: string } {
  return (
    REFUSALS[reason] ?? {
      code: 'CENTER_REFUSED',
      en: `the center refused the connection (reason ${reason}); see the page it sent, or contact the network operator`,
      ja: `運営主体が接続を拒否しました(理由 ${reason})。表示された案内を確認するか、運営主体にお問い合わせください。`,
    }
  );
}

export const agentErrors = {
  destinationRefused: (what: string) =>
    forbidden('AGENT_DESTINATION_REFUSED', `this proxy carries requests to the center only; ${what} is refused (it is not an open proxy)`, {
      ja: `このプロキシは運営主体への通信だけを中継します。${what} は拒否しました。`,
    }),
  userRefused: (uid: number | undefined) =>
    forbidden('AGENT_USER_REFUSED', `this local account (uid ${uid ?? 'unknown'}) is not in listen.allowUsers; the facility's credential serves only the accounts named there`, {
      ja: 'この利用者アカウントは施設の証明書を使う許可がありません(listen.allowUsers)。',
    }),
  httpOnTcpForward: () =>
    forbidden('AGENT_HTTP_ON_TCP_FORWARD', 'an HTTP request came to a TCP forward (HL7, DICOM, …) and was not carried: a web page in a browser on this computer may be trying to send data to the center with the facility certificate', {
      ja: 'TCP 転送ポート(HL7・DICOM など)に HTTP のリクエストが届いたため中継しませんでした。この端末のブラウザで開いた Web ページが、施設の証明書で運営主体へデータを送ろうとした可能性があります。',
    }),
  connectRefused: () =>
    forbidden('AGENT_CONNECT_REFUSED', 'CONNECT is refused: the agent makes the TLS connection itself; send plain http:// requests for the center through this proxy', {
      ja: 'CONNECT は使えません。エージェントが TLS 接続を行うので、運営主体宛ての http:// のリクエストをこのプロキシに送ってください。',
    }),
  notAProxyRequest: () =>
    badRequest('AGENT_NOT_PROXY_REQUEST', 'this is a forward proxy: send absolute-form requests (configure it as the application\'s HTTP proxy)', {
      ja: 'これはフォワードプロキシです。アプリケーションの HTTP プロキシとして設定してください。',
    }),
  centerUnreachable: (detail: string) =>
    unavailable('AGENT_CENTER_UNREACHABLE', `the center cannot be reached (${detail}); check the network and center.gateway`, {
      ja: '運営主体に接続できません。ネットワークと設定(center.gateway)を確認してください。',
    }),
  centerUntrusted: (detail: string) =>
    forbidden('AGENT_CENTER_UNTRUSTED', `the center's certificate is not trusted (${detail}); the agent refuses to send anything. Check center.serverName and the root certificate against the notice letter`, {
      ja: '運営主体のサーバー証明書を信頼できません。通信を中止しました。設定と発行通知書のルート証明書の指紋を確認してください。',
    }),
  rootMismatch: (file: string) =>
    badRequest('AGENT_ROOT_MISMATCH', `${file} holds no certificate whose SHA-256 thumbprint is center.rootThumbprint; get the root certificate again and compare it with the thumbprint on the notice letter`, {
      ja: `${file} のルート証明書の指紋が、設定(発行通知書に記載の指紋)と一致しません。ルート証明書を入手し直して照合してください。`,
    }),
  pinFileOpen: (file: string, mode: number) =>
    badRequest('PIN_FILE_PERMISSIONS', `the PIN file ${file} can be read by others (mode ${(mode & 0o777).toString(8)}); make it readable only by the agent's user: chmod 600 ${file}`, {
      ja: `PINファイル ${file} が他のユーザーから読めます。chmod 600 で本人だけが読めるようにしてください。`,
    }),
  pinMissing: (how: string) =>
    unauthorized('PIN_REQUIRED', `the token PIN is needed: ${how}`, { ja: 'トークンのPINが必要です。設定(credential.pin)を確認してください。' }),
  tokenLocked: (cause?: unknown) =>
    unauthorized('PIN_LOCKED', 'the token is locked after too many wrong PINs; the agent stops and will not try again. The security officer unlocks it ("sekisho token unlock"); then start the agent again', {
      ja: 'PINを続けて間違えたためトークンがロックされました。エージェントは停止し、これ以上PINを試しません。管理者(SO)がロックを解除してから再起動してください。',
      ...(cause !== undefined ? { cause } : {}),
    }),
  renewalFailed: (detail: string, cause?: unknown) =>
    unavailable('AGENT_RENEWAL_FAILED', `renewing the facility certificate failed (${detail}); the current certificate stays in use and the agent tries again at the next check`, {
      ja: '証明書の自動更新に失敗しました。現在の証明書を使い続け、次回の確認時に再試行します。',
      ...(cause !== undefined ? { cause } : {}),
    }),
};

export type AgentError = SekishoError;
