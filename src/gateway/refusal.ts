/**
 * Why the gateway refused a client: one stable code per cause, the same in
 * the audit trail, the metrics, the JSON log and the page a clinic sees.
 */
export const REFUSAL_REASONS = [
  'NO_CLIENT_CERT',
  'UNKNOWN_CA',
  'EXPIRED',
  'NOT_YET_VALID',
  'REVOKED',
  'SHA1_SIGNATURE',
  'WRONG_EKU',
  'KEY_TOO_WEAK',
  'KEY_NOT_CONFORMANT',
  'LEGACY_SUBJECT',
  'RETIRING_CA',
  'OPERATOR_CERTIFICATE',
  'POLICY_CHANGED',
  'PROTOCOL_TOO_OLD',
  'NO_SHARED_CIPHER',
  'FACILITY_SUSPENDED',
  'FACILITY_UNKNOWN',
  'ACCESS_DENIED',
  'REVOCATION_UNAVAILABLE',
  'NOT_TLS',
  'HANDSHAKE_TIMEOUT',
  'HANDSHAKE_FAILED',
  'AUDIT_SPOOL_FULL',
] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

export interface RefusalText {
  en: string;
  ja: string;
}

/** What a person at the clinic should do, per reason (shown on the refusal page and logged). */
export const REFUSAL_ADVICE: Record<RefusalReason, RefusalText> = {
  NO_CLIENT_CERT: {
    en: 'No client certificate was presented. Install the facility certificate issued to you and select it when the browser asks.',
    ja: 'クライアント証明書が提示されませんでした。発行された医療機関の証明書をインストールし、ブラウザーで選択してください。',
  },
  UNKNOWN_CA: {
    en: 'The certificate was not issued by this network’s certificate authority. Use the certificate issued to your facility by the operator.',
    ja: 'この証明書は本ネットワークの認証局が発行したものではありません。運営主体から発行された証明書を使ってください。',
  },
  EXPIRED: {
    en: 'Your facility certificate has expired. Renew it (sekisho enroll / the download portal) or ask the network operator for a new issuance notice.',
    ja: '医療機関の証明書の有効期限が切れています。証明書を更新するか、運営主体に新しい発行通知書を依頼してください。',
  },
  NOT_YET_VALID: {
    en: 'Your certificate is not valid yet. Check this computer’s clock and date.',
    ja: '証明書の有効期間がまだ始まっていません。このコンピューターの日付と時刻を確認してください。',
  },
  REVOKED: {
    en: 'Your facility certificate has been revoked. Contact the network operator to have a new certificate issued.',
    ja: '医療機関の証明書は失効しています。運営主体に連絡し、証明書の再発行を受けてください。',
  },
  SHA1_SIGNATURE: {
    en: 'Your certificate is signed with SHA-1, which is no longer accepted. Ask the network operator for a SHA-2 certificate.',
    ja: '証明書の署名が SHA-1 のため受け付けられません。運営主体に SHA-2 の証明書の発行を依頼してください。',
  },
  LEGACY_SUBJECT: {
    en: 'Your certificate is of an old form that does not name your 10-digit facility number, and is no longer accepted. Ask the network operator for a new issuance notice.',
    ja: '証明書が医療機関コード（10 桁）を含まない旧形式のため受け付けられません。運営主体に新しい発行通知書を依頼してください。',
  },
  RETIRING_CA: {
    en: 'Your certificate was issued by a certificate authority that has been retired. Ask the network operator for a certificate from the current one.',
    ja: '証明書の発行元の認証局は廃止されました。運営主体に現在の認証局の証明書の発行を依頼してください。',
  },
  OPERATOR_CERTIFICATE: {
    en: 'The certificate presented is an operator’s console sign-in, not a facility’s. Choose the facility certificate.',
    ja: '提示された証明書は運営主体の職員用（コンソール用）で、医療機関の証明書ではありません。医療機関の証明書を選んでください。',
  },
  POLICY_CHANGED: {
    en: 'The network switched to a stricter security policy that this connection does not meet. Check the self-check page and update the software or certificate.',
    ja: 'ネットワークのセキュリティ方針がより厳しいものに切り替わり、この接続は条件を満たさなくなりました。セルフチェックページを確認し、ソフトウェアまたは証明書を更新してください。',
  },
  WRONG_EKU: {
    en: 'This certificate may not be used for client authentication. Use the facility (client) certificate, not a server certificate.',
    ja: 'この証明書はクライアント認証に使えません。サーバー証明書ではなく、医療機関（クライアント）証明書を使ってください。',
  },
  KEY_TOO_WEAK: {
    en: 'The certificate’s key is too weak. Ask the network operator for a new certificate.',
    ja: '証明書の鍵の強度が不足しています。運営主体に新しい証明書を依頼してください。',
  },
  KEY_NOT_CONFORMANT: {
    en: 'The certificate’s key is in a form that is not accepted (e.g. explicit elliptic-curve parameters, or an RSA exponent of 3). Ask the network operator for a new certificate with a new key.',
    ja: '証明書の鍵の形式が受け付けられません（楕円曲線パラメーターの明示、RSA 公開指数 3 など）。新しい鍵で証明書の再発行を運営主体に依頼してください。',
  },
  PROTOCOL_TOO_OLD: {
    en: 'Your software uses TLS 1.1 or older. Enable TLS 1.2 or 1.3 or update the software.',
    ja: 'TLS 1.1 以前で接続されています。TLS 1.2 以上を有効にするか、ソフトウェアを更新してください。',
  },
  NO_SHARED_CIPHER: {
    en: 'Your software offers no cipher suite allowed here. Update it or enable the CRYPTREC recommended suites.',
    ja: '利用可能な暗号スイートがありません。ソフトウェアを更新するか、推奨暗号スイートを有効にしてください。',
  },
  FACILITY_SUSPENDED: {
    en: 'Your facility’s access is suspended. Contact the network operator.',
    ja: '医療機関の利用が停止されています。運営主体にお問い合わせください。',
  },
  FACILITY_UNKNOWN: {
    en: 'Your facility is not registered with this network. Contact the network operator.',
    ja: '医療機関が本ネットワークに登録されていません。運営主体にお問い合わせください。',
  },
  ACCESS_DENIED: {
    en: 'Your facility may not use this service. Contact the network operator if you need access.',
    ja: 'この医療機関はこのサービスを利用できません。必要な場合は運営主体にお問い合わせください。',
  },
  REVOCATION_UNAVAILABLE: {
    en: 'The service cannot check certificate revocation right now. Try again later; the operator has been alerted.',
    ja: '現在、証明書の失効確認ができません。しばらくしてから再度お試しください（運営主体に通知済みです）。',
  },
  NOT_TLS: { en: 'The connection did not speak TLS. Use https://.', ja: 'TLS で接続されていません。https:// を使ってください。' },
  HANDSHAKE_TIMEOUT: { en: 'The TLS handshake took too long.', ja: 'TLS ハンドシェイクが時間内に完了しませんでした。' },
  HANDSHAKE_FAILED: { en: 'The TLS handshake failed.', ja: 'TLS ハンドシェイクに失敗しました。' },
  AUDIT_SPOOL_FULL: {
    en: 'The service cannot record connections right now, so it lets none through. Try again later; if it lasts, tell the network operator.',
    ja: '現在、接続の記録ができないため接続を受け付けていません。しばらくしてから再度お試しください。続く場合は運営主体に連絡してください。',
  },
};

/** Handshake-time failures as Node reports them (error.code), mapped to reasons. */
export function reasonOfTlsError(code: string | undefined, message: string): RefusalReason {
  switch (code) {
    case 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE':
      return 'NO_CLIENT_CERT';
    case 'ERR_SSL_UNSUPPORTED_PROTOCOL':
    case 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION':
      return 'PROTOCOL_TOO_OLD';
    case 'ERR_SSL_NO_SHARED_CIPHER':
    case 'ERR_SSL_NO_SHARED_SIGNATURE_ALGORITHMS':
    case 'ERR_SSL_NO_SUITABLE_SIGNATURE_ALGORITHM':
      return 'NO_SHARED_CIPHER';
    case 'ERR_SSL_HTTP_REQUEST':
    case 'ERR_SSL_WRONG_VERSION_NUMBER':
    case 'ERR_SSL_PACKET_LENGTH_TOO_LONG':
      return 'NOT_TLS';
  }
  if (/unsupported protocol|version too low|protocol version/i.test(message)) return 'PROTOCOL_TOO_OLD';
  if (/no shared cipher/i.test(message)) return 'NO_SHARED_CIPHER';
  return 'HANDSHAKE_FAILED';
}

/** Reasons a certificate from our own CA can be told about on an HTTP page (the client did authenticate as someone). */
export const EXPLAINABLE_OVER_HTTP: ReadonlySet<RefusalReason> = new Set(['EXPIRED', 'NOT_YET_VALID', 'REVOKED', 'FACILITY_SUSPENDED', 'FACILITY_UNKNOWN', 'ACCESS_DENIED', 'SHA1_SIGNATURE', 'KEY_TOO_WEAK', 'KEY_NOT_CONFORMANT', 'WRONG_EKU', 'LEGACY_SUBJECT', 'RETIRING_CA', 'OPERATOR_CERTIFICATE', 'REVOCATION_UNAVAILABLE', 'AUDIT_SPOOL_FULL']);
