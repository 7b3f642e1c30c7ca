/**
 * Messages after an action (POST-redirect-GET): the redirect carries only a
 * fixed code (`?done=facility-added`), never text, so no link can make the
 * console say something it did not.
 */
export const FLASH: Readonly<Record<string, { ja: string; en: string }>> = {
  'facility-added': { ja: '医療機関を登録しました。', en: 'The facility was registered.' },
  'facility-suspended': { ja: '医療機関を利用停止にしました。ゲートウェイは数秒以内に接続を拒否します。', en: 'The facility was suspended; gateways refuse it within seconds.' },
  'facility-resumed': { ja: '医療機関の利用を再開しました。', en: 'The facility was resumed.' },
  'certificate-revoked': { ja: '証明書を失効させました。CRL・OCSP・ゲートウェイに数秒以内に反映されます。', en: 'The certificate was revoked; CRL, OCSP and gateways reflect it within seconds.' },
  'notice-revoked': { ja: '発行通知を無効にしました。', en: 'The notice was revoked.' },
  'operator-revoked': { ja: 'オペレーターとその証明書を失効させました。', en: 'The operator and its certificate were revoked.' },
  'notice-unlocked': { ja: '発行通知のロックを解除しました。', en: 'The notice was unlocked.' },
};

export function flashOf(done: string | undefined): { ja: string; en: string } | undefined {
  return done !== undefined && Object.hasOwn(FLASH, done) ? FLASH[done] : undefined;
}
