import { html } from 'hono/html';
import { CAMPAIGN_SKIP_TEXT, LETTER_CSV_HEADER, noticeLettersCsvRows, parseExpiryWindow, printNoticeLetters, renderNoticeLetters, type ExpiringCertificate, type RenewalUnderWay } from '../../ca/index.js';
import { badRequest, isSekishoError, notFound } from '../../errors/index.js';
import { csvDocument } from '../../report/index.js';
import type { ConsoleContext, ConsoleRoutes } from '../app.js';
import { CampaignFiles, type HeldCampaign } from '../campaign-files.js';
import { bi, csrfField, type Markup } from '../layout.js';
import { may } from '../roles.js';

export const EXPIRY_TABS = [30, 60, 90] as const;

const RENEWAL: Record<RenewalUnderWay, { ja: string; en: string }> = {
  none: { ja: '未対応', en: 'nothing under way' },
  'newer-certificate': { ja: '新しい証明書あり', en: 'newer certificate issued' },
  renewing: { ja: '更新手続き中', en: 'renewal under way (EST)' },
  'open-notice': { ja: '通知書発行済み（未使用）', en: 'open notice' },
};

/** The window asked for (?days=30, default 60). */
export function expiryDays(v: string | undefined): number {
  return v === undefined || v === '' ? 60 : parseExpiryWindow(v);
}

/** The facilities a campaign form chose: its checkboxes are named facility-<number>. */
export function chosenFacilities(form: Record<string, string>): string[] {
  return Object.keys(form)
    .map((k) => /^facility-(\d{10})$/.exec(k)?.[1])
    .filter((n): n is string => n !== undefined);
}

/**
 * Runs a renewal campaign for the signed-in operator (the same call as
 * `sekisho notice create --expiring`) and holds its letters (PDF with
 * Chromium, else HTML to print from the browser) and mail-merge CSV for that
 * operator. If the letters cannot be made the campaign's notices are revoked
 * again, so none is left without a letter.
 */
export async function runCampaign(r: ConsoleRoutes, files: CampaignFiles, c: ConsoleContext, days: number, facilities: readonly string[] | undefined): Promise<HeldCampaign> {
  const op = c.get('operator');
  const ca = r.deps.ca;
  const result = await ca.campaigns.run({ days, actor: op.actor, ...(facilities ? { facilities } : {}) });
  if (result.notices.length === 0) return files.put({ result, owner: op.fingerprint });
  const context = { organization: ca.config.organization, portalUrl: r.deps.portalUrl, rootDer: ca.rootDer };
  try {
    const base = `renewal-${result.id}`;
    const letters = r.deps.chromium
      ? { body: (await printNoticeLetters(result.notices, context, r.deps.chromium)).pdf, type: 'application/pdf', file: `${base}-letters.pdf` }
      : { body: Buffer.from(renderNoticeLetters(result.notices, context), 'utf8'), type: 'text/html; charset=utf-8', file: `${base}-letters.html` };
    const csv = { body: Buffer.from(csvDocument(LETTER_CSV_HEADER, noticeLettersCsvRows(result.notices, context)), 'utf8'), file: `${base}-mail-merge.csv` };
    return files.put({ result, owner: op.fingerprint, letters, csv });
  } catch (e) {
    await ca.campaigns.withdraw(result, op.actor, isSekishoError(e) ? e.code : 'LETTER_PDF_FAILED');
    throw e;
  }
}

function expiringTable(list: ExpiringCertificate[], selectable: boolean): Markup {
  if (!list.length) return html`<p class="muted">この期間に期限切れとなる証明書はありません。<span class="en">No certificate ends within this window.</span></p>`;
  return html`<table>
<thead><tr>${selectable ? html`<th class="no-print">${bi('選択', 'Select')}</th>` : ''}<th>${bi('有効期限', 'Ends')}</th><th>${bi('残り日数', 'Days left')}</th><th>${bi('医療機関番号', 'Facility')}</th><th>${bi('名称', 'Name')}</th><th>${bi('シリアル番号', 'Serial')}</th><th>${bi('更新状況', 'Renewal')}</th></tr></thead>
<tbody>${list.map(
    (x) => html`<tr>${selectable
      ? html`<td class="no-print">${x.renewal === 'none' ? html`<input type="checkbox" name="facility-${x.facilityNumber}" value="1" checked aria-label="${x.facilityName}">` : ''}</td>`
      : ''}<td>${x.notAfter.slice(0, 10)}</td><td>${x.daysLeft}</td><td class="mono"><a href="/facilities/${x.facilityNumber}">${x.facilityNumber}</a></td><td>${x.facilityName}</td><td class="mono">${x.serial}</td><td>${RENEWAL[x.renewal].ja}<span class="en">${RENEWAL[x.renewal].en}${x.openNotice ? ` ${x.openNotice}` : ''}${x.newerSerial ? ` ${x.newerSerial}` : ''}</span></td></tr>`,
  )}</tbody>
</table>`;
}

function campaignPage(h: HeldCampaign): Markup {
  const res = h.result;
  return html`<dl class="facts">
<dt>${bi('キャンペーン', 'Campaign')}</dt><dd class="mono">${res.id}</dd>
<dt>${bi('対象期間', 'Window')}</dt><dd>${res.windowDays} 日以内に期限切れ<span class="en">ending within ${res.windowDays} days</span></dd>
<dt>${bi('作成した通知書', 'Notices created')}</dt><dd>${res.notices.length}</dd>
<dt>${bi('対象外', 'Skipped')}</dt><dd>${res.skipped.length}</dd>
<dt>${bi('実行者', 'Run by')}</dt><dd class="mono">${res.actor}</dd>
</dl>
${h.letters && h.csv
    ? html`<p class="panel no-print"><a href="/campaigns/${res.id}/letters" download="${h.letters.file}">通知書（${h.letters.type === 'application/pdf' ? 'PDF' : 'HTML'}、1通1ページ）をダウンロード<span class="en">Download the letters (one page each)</span></a><br>
<a href="/campaigns/${res.id}/mail-merge.csv" download="${h.csv.file}">差し込み印刷用 CSV をダウンロード<span class="en">Download the mail-merge CSV</span></a></p>
<p class="flash error">通知書と CSV には申請ID・参照IDが含まれます（他では二度と表示されません）。施錠できる場所で扱い、差し込み印刷の後は CSV を削除してください。この画面からのダウンロードは ${new Date(h.heldUntil).toISOString().slice(11, 16)} UTC まで、実行した本人のみ可能です。<span class="en">The letters and the CSV hold the request and reference IDs (shown nowhere else). Keep them locked away and delete the CSV after the mail merge. Only you can download them here, until ${new Date(h.heldUntil).toISOString().slice(11, 16)} UTC.</span></p>`
    : html`<p class="muted">作成した通知書はありません。<span class="en">No notice was created.</span></p>`}
${res.notices.length
    ? html`<h2>${bi('作成した通知書', 'Notices created')}</h2><table><thead><tr><th>${bi('通知番号', 'Notice')}</th><th>${bi('医療機関', 'Facility')}</th><th>${bi('名称', 'Name')}</th><th>${bi('更新対象の証明書', 'Replaces')}</th><th>${bi('通知書の有効期限', 'Notice valid until')}</th></tr></thead>
<tbody>${res.notices.map((n) => html`<tr><td class="mono">${n.id}</td><td class="mono"><a href="/facilities/${n.facility.number}">${n.facility.number}</a></td><td>${n.facility.name}</td><td class="mono">${n.serial} (${n.notAfter.slice(0, 10)})</td><td>${n.expiresAt.slice(0, 10)}</td></tr>`)}</tbody></table>`
    : ''}
${res.skipped.length
    ? html`<h2>${bi('対象外とした医療機関', 'Skipped')}</h2><table><thead><tr><th>${bi('医療機関', 'Facility')}</th><th>${bi('名称', 'Name')}</th><th>${bi('理由', 'Reason')}</th></tr></thead>
<tbody>${res.skipped.map((s) => html`<tr><td class="mono"><a href="/facilities/${s.facilityNumber}">${s.facilityNumber}</a></td><td>${s.facilityName ?? '—'}</td><td>${CAMPAIGN_SKIP_TEXT[s.reason].ja}<span class="en">${CAMPAIGN_SKIP_TEXT[s.reason].en}${s.detail ? ` (${s.detail})` : ''}</span></td></tr>`)}</tbody></table>`
    : ''}`;
}

/** Expiring certificates (30/60/90-day tabs) and the renewal campaign: select, run, download the letters and the CSV. */
export function registerExpiringView(r: ConsoleRoutes, files: CampaignFiles): void {
  r.nav({ path: '/expiring', ja: '期限切れ間近', en: 'Expiring soon', permission: 'certificates.read', order: 40 });

  r.page('GET', '/expiring', 'certificates.read', async (c) => {
    const days = expiryDays(c.req.query('days'));
    await r.deps.ca.applyDueRevocations();
    const list = await r.deps.ca.campaigns.expiring({ days });
    const canRun = may(c.get('operator').role, 'campaigns.write');
    const open = list.filter((x) => x.renewal === 'none').length;
    const tabs = html`<nav class="tabs no-print" aria-label="期間 / Window"><ul>${EXPIRY_TABS.map((d) => html`<li><a href="/expiring?days=${d}"${d === days ? html` aria-current="page"` : ''}>${d}日以内<span class="en">${d} days</span></a></li>`)}</ul></nav>`;
    const summary = html`<p>${days}日以内に期限切れとなる証明書: ${list.length}件（うち未対応 ${open}件）<span class="en">${list.length} certificate(s) end within ${days} days; ${open} with nothing under way.</span></p>`;
    return r.render(c, {
      title: { ja: '期限切れ間近の証明書', en: 'Certificates expiring soon' },
      current: '/expiring',
      body: canRun && open > 0
        ? html`${tabs}${summary}<form method="post" action="/expiring/campaign">${csrfField(r.token(c))}<input type="hidden" name="days" value="${days}">
${expiringTable(list, true)}
<p class="panel no-print">選択した医療機関に更新用の発行通知書を一括作成し、通知書（1通1ページのPDF）と差し込み印刷用CSVを作ります。新しい証明書・更新手続き・未使用の通知書がある医療機関と利用停止中の医療機関は対象外です。<span class="en">Creates a renewal notice for each selected facility, one PDF of letters (a page each) and a mail-merge CSV. Facilities with a newer certificate, a renewal under way, an open notice, or suspended are skipped.</span>
<button type="submit" name="run" value="1">更新キャンペーンを実行<span class="en">Run renewal campaign</span></button></p></form>`
        : html`${tabs}${summary}${expiringTable(list, false)}`,
    });
  });

  r.page('POST', '/expiring/campaign', 'campaigns.write', async (c, form) => {
    const days = expiryDays(form.days);
    const chosen = chosenFacilities(form);
    if (chosen.length === 0) throw badRequest('CAMPAIGN_NOTHING_SELECTED', 'select at least one facility', { ja: '医療機関を1件以上選択してください。' });
    const held = await runCampaign(r, files, c, days, chosen);
    return c.redirect(`/campaigns/${held.result.id}`, 303);
  });

  const heldOr404 = (c: ConsoleContext): HeldCampaign => {
    const h = files.get(c.req.param('id') ?? '', c.get('operator').fingerprint);
    if (!h) throw notFound('CAMPAIGN_NOT_HELD', 'this campaign is not held for you (another operator ran it, it is older than 30 minutes, or the console restarted); its notices are listed under Notices', { ja: 'このキャンペーンの結果は保持されていません（別の担当者が実行したか、30分以上経過したか、コンソールが再起動されました）。通知書は「発行通知」で確認できます。' });
    return h;
  };
  r.page('GET', '/campaigns/:id', 'campaigns.write', (c) => r.render(c, { title: { ja: '更新キャンペーンの結果', en: 'Renewal campaign' }, current: '/expiring', body: campaignPage(heldOr404(c)) }));
  r.page('GET', '/campaigns/:id/letters', 'campaigns.write', (c) => {
    const h = heldOr404(c);
    if (!h.letters) throw notFound('CAMPAIGN_NO_LETTERS', 'this campaign created no notice');
    return c.body(new Uint8Array(h.letters.body), 200, { 'Content-Type': h.letters.type, 'Content-Disposition': `attachment; filename="${h.letters.file}"` });
  });
  r.page('GET', '/campaigns/:id/mail-merge.csv', 'campaigns.write', (c) => {
    const h = heldOr404(c);
    if (!h.csv) throw notFound('CAMPAIGN_NO_LETTERS', 'this campaign created no notice');
    return c.body(new Uint8Array(h.csv.body), 200, { 'Content-Type': 'text/csv; charset=utf-8', 'Content-Disposition': `attachment; filename="${h.csv.file}"` });
  });
}
