import { html } from 'hono/html';
import { printToPdf, renderNoticeLetter, type CreatedNotice, type NoticeSummary, type NoticeState } from '../../ca/index.js';
import { badRequest } from '../../errors/index.js';
import { parseFacilityNumber } from '../../policy/index.js';
import type { ConsoleContext, ConsoleRoutes } from '../app.js';
import { flashOf } from '../flash.js';
import { bi, csrfField, type Markup } from '../layout.js';
import { may } from '../roles.js';

const STATE_JA: Record<NoticeState, string> = { active: '有効', locked: 'ロック中', expired: '期限切れ', claimed: '処理中', used: '使用済み', revoked: '無効' };

/** The notices table; with a CSRF token, revoke and unlock buttons where they apply. */
export function noticeRows(list: NoticeSummary[], token: string | undefined): Markup {
  if (!list.length) return html`<p class="muted">発行通知はありません。<span class="en">No notices.</span></p>`;
  return html`<table>
<thead><tr><th>${bi('通知番号', 'Notice')}</th><th>${bi('種別', 'Kind')}</th><th>${bi('医療機関', 'Facility')}</th><th>${bi('状態', 'State')}</th><th>${bi('誤入力', 'Wrong tries')}</th><th>${bi('有効期限', 'Expires')}</th><th>${bi('証明書', 'Certificate')}</th>${token ? html`<th class="action no-print">${bi('操作', 'Action')}</th>` : ''}</tr></thead>
<tbody>${list.map(
    (n) => html`<tr><td class="mono">${n.id}</td><td>${n.kind}</td><td class="mono"><a href="/facilities/${n.facilityNumber}">${n.facilityNumber}</a></td><td><span class="status-${n.state}">${STATE_JA[n.state]}</span><span class="en">${n.state}</span></td><td>${n.failures}</td><td>${n.expiresAt.slice(0, 10)}</td><td class="mono">${n.serial ?? '—'}</td>${token
      ? html`<td class="action no-print">${n.state === 'active' || n.state === 'locked' ? html`<form class="inline" method="post" action="/notices/${n.id}/revoke">${csrfField(token)}<button type="submit" class="quiet">無効化<span class="en">Revoke</span></button></form>` : ''}
${n.state === 'locked' ? html` <form class="inline" method="post" action="/notices/${n.id}/unlock">${csrfField(token)}<button type="submit" class="quiet">ロック解除<span class="en">Unlock</span></button></form>` : ''}</td>`
      : ''}</tr>`,
  )}</tbody>
</table>`;
}

export function parseNoticeDays(v: unknown): number | undefined {
  if (v === undefined || v === '' || v === null) return undefined;
  const s = String(v);
  if (!/^\d{1,3}$/.test(s)) throw badRequest('NOTICE_DAYS_INVALID', 'days must be a whole number of days (1–366)', { ja: '有効日数は1〜366の整数で入力してください。' });
  return Number(s);
}

/** Creates a notice for an operator: the same call as `sekisho notice create`, with the operator as actor. */
export async function createNotice(r: ConsoleRoutes, c: ConsoleContext, facility: string, days: number | undefined): Promise<CreatedNotice> {
  const number = parseFacilityNumber(facility);
  await r.deps.ca.registration.activeFacility(number);
  return r.deps.ca.notices.create({ facilityNumber: number, ...(days !== undefined ? { validityDays: days } : {}), actor: c.get('operator').actor });
}

/**
 * The letter of a just-made notice, as PDF (Chromium) or, without Chromium, as
 * the HTML letter to print from the browser. Its IDs exist only here: if the
 * letter cannot be made, the notice is revoked so no unprintable notice stays usable.
 */
export async function noticeLetter(r: ConsoleRoutes, c: ConsoleContext, notice: CreatedNotice): Promise<{ body: Buffer; type: string; file: string }> {
  const letter = renderNoticeLetter({ notice, organization: r.deps.ca.config.organization, portalUrl: r.deps.portalUrl, rootDer: r.deps.ca.rootDer });
  const base = `notice-${notice.facility.number}-${notice.id}`;
  try {
    if (r.deps.chromium) return { body: await printToPdf(letter, r.deps.chromium), type: 'application/pdf', file: `${base}.pdf` };
    return { body: Buffer.from(letter, 'utf8'), type: 'text/html; charset=utf-8', file: `${base}.html` };
  } catch (e) {
    await r.deps.ca.notices.revoke(notice.id, c.get('operator').actor).catch(() => undefined);
    throw e;
  }
}

/** The notices view: list (by facility), create and print the letter, revoke, unlock. */
export function registerNoticesView(r: ConsoleRoutes): void {
  r.nav({ path: '/notices', ja: '発行通知', en: 'Notices', permission: 'notices.read', order: 30 });

  r.page('GET', '/notices', 'notices.read', async (c) => {
    const facility = c.req.query('facility');
    const number = facility ? parseFacilityNumber(facility) : undefined;
    const list = await r.deps.ca.notices.list(number ? { facilityNumber: number } : {});
    const op = c.get('operator');
    const token = may(op.role, 'notices.write') ? r.token(c) : undefined;
    return r.render(c, {
      title: { ja: '発行通知', en: 'Issuance notices' },
      current: '/notices',
      ...(flashOf(c.req.query('done')) ? { flash: flashOf(c.req.query('done'))! } : {}),
      body: html`${token
        ? html`<form class="panel" method="post" action="/notices">${csrfField(token)}
<p>通知書（PDF）を作成します。リクエストIDと参照IDはこの通知書にだけ印字され、再表示できません。<span class="en">Makes the letter (PDF). Its request ID and reference ID are printed on it only and cannot be shown again.</span></p>
<label>${bi('医療機関番号', 'Facility number')} <input type="text" name="facility" required inputmode="numeric" pattern="[0-9]{10}" maxlength="10" value="${number ?? ''}"></label>
<label>${bi('有効日数', 'Valid days')} <input type="number" name="days" min="1" max="366" placeholder="180"></label>
<button type="submit">作成して印刷<span class="en">Create and print</span></button>
</form>`
        : ''}
<form class="panel no-print" method="get" action="/notices"><label>${bi('医療機関番号で絞り込み', 'Filter by facility')} <input type="text" name="facility" value="${number ?? ''}" maxlength="10"></label> <button type="submit" class="quiet">表示<span class="en">Show</span></button></form>
${noticeRows(list, token)}`,
    });
  });

  // The answer is the letter itself (a download): a reload cannot make a second notice, and the IDs never sit in a page.
  r.page('POST', '/notices', 'notices.write', async (c, form) => {
    const notice = await createNotice(r, c, form.facility ?? '', parseNoticeDays(form.days));
    const letter = await noticeLetter(r, c, notice);
    return c.body(new Uint8Array(letter.body), 200, { 'Content-Type': letter.type, 'Content-Disposition': `attachment; filename="${letter.file}"` });
  });

  for (const word of ['revoke', 'unlock'] as const) {
    r.page('POST', `/notices/:id/${word}`, 'notices.write', async (c) => {
      const n = word === 'revoke' ? await r.deps.ca.notices.revoke(c.req.param('id') ?? '', c.get('operator').actor) : await r.deps.ca.notices.unlock(c.req.param('id') ?? '', c.get('operator').actor);
      return c.redirect(`/facilities/${n.facilityNumber}?done=notice-${word === 'revoke' ? 'revoked' : 'unlocked'}`, 303);
    });
  }
}
