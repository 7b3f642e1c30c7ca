/**
 * What a clinic is told about its downloads: how many a notice has left,
 * which certificate a new download made useless, and how to keep the
 * PKCS#12 safe (back it up apart from the terminal, delete the download,
 * reinstall on a replacement PC). Japanese first, English beside it. The
 * letter, the portal's result page, the text files beside the PKCS#12 and
 * the bulk delivery text all take their words from here.
 */

/** One finished download of a notice. */
export interface NoticeRedemption {
  /** This download's number (1 = the first). */
  download: number;
  maxDownloads: number;
  /** Downloads the notice still allows. */
  left: number;
  /** The certificate this download revoked (reason superseded): the previous download's. */
  superseded?: { serial: string; issuedAt?: string };
}

export interface BilingualText {
  ja: string;
  en: string;
}

/** The result of one download in a sentence or two: what no longer works and what is left. */
export function redemptionText(r: NoticeRedemption): BilingualText {
  const ja: string[] = [];
  const en: string[] = [];
  if (r.superseded) {
    const on = r.superseded.issuedAt ? r.superseded.issuedAt.slice(0, 10) : undefined;
    ja.push(`以前にこの通知書でダウンロードした証明書（シリアル番号 ${r.superseded.serial}${on ? `、${on} 発行` : ''}）は失効しました。もう使えません。その証明書を入れた端末には、今回の証明書をインストールしてください。`);
    en.push(`The certificate downloaded before with this notice (serial ${r.superseded.serial}${on ? `, issued ${on}` : ''}) is revoked and no longer works. Install this one wherever it was installed.`);
  }
  if (r.maxDownloads > 1) {
    if (r.left > 0) {
      ja.push(`この通知書のダウンロードは ${r.maxDownloads} 回中 ${r.download} 回目です。有効期限内に、あと ${r.left} 回ダウンロードできます（ダウンロードするたびに、前の証明書は失効します）。`);
      en.push(`This was download ${r.download} of ${r.maxDownloads} with this notice; ${r.left} more ${r.left === 1 ? 'is' : 'are'} possible before it expires (each one revokes the certificate before it).`);
    } else {
      ja.push(`この通知書のダウンロードは上限（${r.maxDownloads} 回）に達しました。再度必要になったときは、運営主体に新しい通知書をご依頼ください。`);
      en.push(`This notice has now been used for all ${r.maxDownloads} downloads; if you need the certificate again, ask the network operator for a new notice.`);
    }
  } else {
    ja.push('この通知書は使用済みになりました。再度必要になったときは、運営主体に新しい通知書をご依頼ください。');
    en.push('This notice is now used; if you need the certificate again, ask the network operator for a new notice.');
  }
  return { ja: ja.join(''), en: en.join(' ') };
}

/**
 * Keeping the PKCS#12: back it up to external media kept apart from the
 * terminal, delete the downloaded file once installed, and on a replacement
 * PC import the backup, or (a notice's certificate, within its window)
 * download again, which revokes the old one. `source` says how this
 * certificate came: with a notice, or delivered by the operator (bulk).
 */
export function backupAdvice(source: 'notice' | 'delivery'): { ja: string[]; en: string[] } {
  return {
    ja: [
      '証明書ファイル（.p12）は、USBメモリなどの外部媒体にバックアップし、端末とは別の施錠できる場所に保管してください（パスワードは別の場所に控えてください）。',
      'インストールが終わったら、端末に残ったダウンロードファイル（.p12、ZIP）を削除し、ごみ箱も空にしてください。',
      source === 'notice'
        ? '端末を入れ替えるときは、新しい端末にバックアップの .p12 をインポートします。バックアップかパスワードを失ったときは、通知書の有効期限内に限り、もう一度ダウンロードできます（回数に上限があり、前の証明書は直ちに失効します）。'
        : '端末を入れ替えるときは、新しい端末にバックアップの .p12 をインポートします。バックアップかパスワードを失ったときは、運営主体に新しい証明書をご依頼ください（前の証明書は失効させます）。',
    ],
    en: [
      'Back the certificate file (.p12) up to external media (e.g. a USB stick) and keep it locked away, apart from the terminal (note the password elsewhere).',
      'Once installed, delete the downloaded files (.p12, ZIP) from the terminal and empty the recycle bin.',
      source === 'notice'
        ? 'On a replacement PC, import the backup .p12. If the backup or its password is lost, you can download again while the notice is valid (a limited number of times; the certificate before is revoked at once).'
        : 'On a replacement PC, import the backup .p12. If the backup or its password is lost, ask the network operator for a new certificate (the old one will be revoked).',
    ],
  };
}
