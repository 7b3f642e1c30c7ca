import { randomInt } from 'node:crypto';
import { fingerprint } from '../pki/index.js';
import { backupAdvice } from './notice-downloads.js';

/** Characters that survive being read off paper: no 0/O, 1/l/I, 2/Z, 5/S, 8/B. */
const PASSWORD_ALPHABET = 'abcdefghjkmnpqrstuvwxyzACDEFGHJKLMNPQRTUVWXY34679';

/** A generated certificate password: 3 groups of 4 (≈ 67 bits), e.g. "k7Mx-Pq3r-Tz9w". */
export function generatePassword(): string {
  const groups: string[] = [];
  for (let g = 0; g < 3; g++) {
    let s = '';
    for (let i = 0; i < 4; i++) s += PASSWORD_ALPHABET[randomInt(PASSWORD_ALPHABET.length)];
    groups.push(s);
  }
  return groups.join('-');
}

export { safeFileName } from './file-name.js';

export interface DeliveryTextInput {
  facilityNumber: string;
  facilityName: string;
  password: string;
  p12FileName: string;
  serial: string;
  notAfter: Date;
  rootDer: Buffer;
  portalUrl?: string;
  centerUrl?: string;
}

/** The text that travels with each PKCS#12 (Japanese first, then English). */
export function deliveryText(d: DeliveryTextInput): string {
  const date = d.notAfter.toISOString().slice(0, 10);
  const backup = backupAdvice('delivery');
  return [
    `証明書送付のお知らせ / Certificate delivery`,
    ``,
    `医療機関名 / Facility:        ${d.facilityName}`,
    `医療機関番号 / Number:        ${d.facilityNumber}`,
    `証明書ファイル / File:        ${d.p12FileName}`,
    `証明書パスワード / Password:  ${d.password}`,
    `シリアル番号 / Serial:        ${d.serial}`,
    `有効期限 / Valid until:       ${date}`,
    ...(d.portalUrl ? [`ポータル / Portal:            ${d.portalUrl}`] : []),
    ...(d.centerUrl ? [`接続先 / Service center:      ${d.centerUrl}`] : []),
    ``,
    `ルート証明書の拇印 / Root certificate thumbprints (root-ca.cer):`,
    `  SHA-256: ${fingerprint(d.rootDer)}`,
    `  SHA-1:   ${fingerprint(d.rootDer, 'sha1')}`,
    ``,
    `インストール手順:`,
    `  1. root-ca.cer を開き、拇印が上記と一致することを確認してから「信頼されたルート証明機関」にインストールします。`,
    `  2. ${d.p12FileName} を開き、上記のパスワードを入力してインストールします。`,
    `     「秘密キーの保護を強力にする」にはチェックを入れないでください（連携アプリケーションが認証できなくなります）。`,
    `  3. パスワードは他人に知られないよう保管し、この用紙は施錠できる場所に保管してください。`,
    ``,
    `Install:`,
    `  1. Open root-ca.cer, check that its thumbprint matches the one above, and install it as a trusted root.`,
    `  2. Open ${d.p12FileName} and enter the password above.`,
    `     Leave "Enable strong private key protection" unchecked, or linked applications cannot authenticate.`,
    `  3. Keep the password secret and this sheet locked away.`,
    ``,
    `バックアップと端末の入れ替え / Backup and a replacement PC:`,
    ...backup.ja.map((t) => `  - ${t}`),
    ...backup.en.map((t) => `  - ${t}`),
    ``,
  ].join('\n');
}
