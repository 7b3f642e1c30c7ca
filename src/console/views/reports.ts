import { html } from 'hono/html';
import { migrationReadiness, parseAuditSearch, parseMigrationFilter, refusalSummary, type AuditSearchInput, type MigrationReadiness, type RefusalSummary } from '../../report/index.js';
import { badRequest, isSekishoError } from '../../errors/index.js';
import type { RecordedAuditEvent, TrailReport } from '../../audit/index.js';
import type { ConsoleContext, ConsoleRoutes } from '../app.js';
import { bi, type Markup } from '../layout.js';

/** The refusal summary's window as asked (?hours=, default 24, 1–744). */
export function refusalHours(v: string | undefined): number {
  if (v === undefined || v === '') return 24;
  if (!/^\d{1,3}$/.test(v) || Number(v) < 1 || Number(v) > 744) throw badHours(v);
  return Number(v);
}
const badHours = (v: string) => badRequest('REPORT_FILTER_INVALID', `hours "${v.slice(0, 20)}" is not 1–744`, { ja: '時間は1〜744の整数で指定してください。' });

/** The audit search terms of a request's query string. */
export function auditSearchOf(c: ConsoleContext): AuditSearchInput {
  const q = (k: string) => c.req.query(k);
  const input: AuditSearchInput = {};
  for (const k of ['action', 'actor', 'facility', 'from', 'to', 'before', 'limit'] as const) {
    const v = q(k);
    if (v !== undefined) input[k] = v.slice(0, 256);
  }
  return input;
}

/** The verification status of the trail, or why it cannot be verified (no audit key yet). */
export async function trailStatus(r: ConsoleRoutes): Promise<TrailReport | { status: 'unverifiable'; code: string; reason: string }> {
  try {
    return await r.deps.ca.verifyAuditTrail();
  } catch (e) {
    if (isSekishoError(e) && /^AUDIT_KEY_/.test(e.code)) return { status: 'unverifiable', code: e.code, reason: e.message };
    throw e;
  }
}

function refusalsBody(s: RefusalSummary, hours: number): Markup {
  return html`<p>${hours}時間以内の拒否: ${s.total}件<span class="en">${s.total} refusal(s) in the last ${hours} hours (${s.from} – ${s.to})</span></p>
<h2>${bi('理由別', 'By reason')}</h2>
${s.byReason.length
    ? html`<table><thead><tr><th>${bi('理由コード', 'Reason')}</th><th>${bi('件数', 'Count')}</th><th>${bi('医療機関数', 'Facilities')}</th><th>${bi('身元不明の接続', 'Without identity')}</th></tr></thead>
<tbody>${s.byReason.map((x) => html`<tr><td class="mono">${x.reason}</td><td>${x.count}</td><td>${x.facilities}</td><td>${x.unidentified}</td></tr>`)}</tbody></table>`
    : html`<p class="muted">拒否はありません。<span class="en">No refusals.</span></p>`}
<h2>${bi('医療機関別', 'By facility')}</h2>
${s.byFacility.length
    ? html`<table><thead><tr><th>${bi('医療機関', 'Facility')}</th><th>${bi('名称', 'Name')}</th><th>${bi('件数', 'Count')}</th><th>${bi('理由', 'Reasons')}</th><th>${bi('最後の拒否', 'Last refused')}</th><th>${bi('証明書', 'Certificate')}</th><th>${bi('詳細', 'Detail')}</th></tr></thead>
<tbody>${s.byFacility.map(
        (x) => html`<tr><td class="mono">${x.facility ? html`<a href="/facilities/${x.facility}">${x.facility}</a>` : x.actor}</td><td>${x.name ?? (x.facility ? '（未登録）' : '—')}</td><td>${x.count}</td><td class="mono">${Object.entries(x.reasons).map(([k, n]) => html`${k} ×${n}<br>`)}</td><td>${x.lastAt}</td><td class="mono">${x.lastSerial ?? '—'}</td><td>${x.lastDetail ?? ''}</td></tr>`,
      )}</tbody></table>`
    : ''}`;
}

function trailBody(status: Awaited<ReturnType<typeof trailStatus>>, events: RecordedAuditEvent[], input: AuditSearchInput, limit: number): Markup {
  const verdict =
    status.status === 'intact'
      ? html`<p class="flash" role="status">監査証跡は改ざんされていません（${status.events}件${status.signedThrough ? `、イベント ${status.signedThrough.seq} まで署名済み` : ''}）。<span class="en">The audit trail is intact: ${status.events} events${status.signedThrough ? `, signed through event ${status.signedThrough.seq} (checkpoint ${status.signedThrough.checkpoint})` : ''}${status.uncovered ? `; events ${status.uncovered.fromSeq}–${status.uncovered.toSeq} not yet signed (not tampering)` : ''}.</span></p>`
      : status.status === 'tampered'
        ? html`<div class="flash error" role="alert">監査証跡に改ざんの形跡があります。データベースを保全し、調査してください。<span class="en">The audit trail shows tampering; preserve the database and investigate.</span><ul>${status.problems.map((p) => html`<li class="mono">${p.kind}: ${p.message}</li>`)}</ul></div>`
        : html`<p class="flash error" role="status">監査証跡を検証できません。<span class="en">The audit trail cannot be verified: ${'reason' in status ? status.reason : ''}</span></p>`;
  // A full page may have more behind it: the next page is the events before the last one shown.
  const last = events.length >= limit ? events[events.length - 1] : undefined;
  const next = last ? new URLSearchParams({ ...Object.fromEntries(Object.entries(input).filter(([k, v]) => k !== 'before' && v)), before: String(last.seq) }).toString() : '';
  return html`${verdict}
<form class="panel no-print" method="get" action="/audit">
<label>${bi('種別', 'Event type')} <input type="search" name="action" value="${input.action ?? ''}" placeholder="notice.* / gateway.refused" maxlength="65"></label>
<label>${bi('実行者', 'Actor')} <input type="search" name="actor" value="${input.actor ?? ''}" maxlength="200"></label>
<label>${bi('医療機関番号', 'Facility')} <input type="search" name="facility" value="${input.facility ?? ''}" maxlength="10" inputmode="numeric"></label>
<label>${bi('開始', 'From')} <input type="text" name="from" value="${input.from ?? ''}" placeholder="2026-04-01"></label>
<label>${bi('終了', 'To')} <input type="text" name="to" value="${input.to ?? ''}" placeholder="2026-04-30"></label>
<button type="submit">検索<span class="en">Search</span></button>
</form>
${events.length
    ? html`<table><thead><tr><th>#</th><th>${bi('日時 (UTC)', 'At (UTC)')}</th><th>${bi('種別', 'Event')}</th><th>${bi('結果', 'Outcome')}</th><th>${bi('実行者', 'Actor')}</th><th>${bi('対象', 'Subject')}</th><th>${bi('理由', 'Reason')}</th><th>${bi('詳細', 'Details')}</th></tr></thead>
<tbody>${events.map((e) => html`<tr><td>${e.seq}</td><td class="mono">${e.at}</td><td class="mono">${e.action}</td><td>${e.outcome}</td><td class="mono">${e.actor}</td><td class="mono">${e.subject ?? ''}</td><td class="mono">${e.reasonCode ?? ''}</td><td class="mono">${e.details ? JSON.stringify(e.details).slice(0, 300) : ''}</td></tr>`)}</tbody></table>
${last ? html`<p class="no-print"><a href="/audit?${next}">さらに古いイベント<span class="en">Older events</span></a></p>` : ''}`
    : html`<p class="muted">該当するイベントはありません。<span class="en">No matching events.</span></p>`}`;
}

const STANDING: Record<string, { ja: string; en: string }> = {
  ready: { ja: '移行可', en: 'ready' },
  'at-risk': { ja: '要対応', en: 'at risk' },
  'not-seen-since': { ja: '期間内の接続なし', en: 'not seen since' },
  'never-seen': { ja: '接続記録なし', en: 'never seen' },
};

function migrationBody(m: MigrationReadiness): Markup {
  const profiles = ['high', 'recommended', 'mhlw', 'exception'];
  return html`<form class="panel no-print" method="get" action="/migration"><label>${bi('移行先プロファイル', 'Target profile')} <select name="to">${profiles.map((p) => html`<option value="${p}"${p === m.target.profile ? html` selected` : ''}>${p}</option>`)}</select></label>
<label>${bi('集計開始日', 'Since')} <input type="text" name="since" value="${m.window.since}" placeholder="YYYY-MM-DD"></label> <button type="submit">表示<span class="en">Show</span></button></form>
<p>${m.target.nameJa}（${m.target.profile}）への移行準備状況、${m.window.since} 〜 ${m.window.until}<span class="en">Readiness for ${m.target.profile}, ${m.window.since} – ${m.window.until}</span></p>
<table><thead><tr>${(['ready', 'at-risk', 'not-seen-since', 'never-seen'] as const).map((k) => html`<th>${bi(STANDING[k]!.ja, STANDING[k]!.en)}</th>`)}<th>${bi('証明書なしのクライアント', 'Clients without a certificate')}</th></tr></thead>
<tbody><tr>${(['ready', 'at-risk', 'not-seen-since', 'never-seen'] as const).map((k) => html`<td>${m.totals[k]}</td>`)}<td>${m.totals.unidentifiedClients}</td></tr></tbody></table>
<h2>${bi('医療機関', 'Facilities')}</h2>
<table><thead><tr><th>${bi('医療機関', 'Facility')}</th><th>${bi('名称', 'Name')}</th><th>${bi('状況', 'Standing')}</th><th>${bi('接続数', 'Connections')}</th><th>${bi('拒否される接続', 'Would be refused')}</th><th>${bi('問題と対処', 'Problems and fixes')}</th><th>${bi('最終接続', 'Last seen')}</th></tr></thead>
<tbody>${m.facilities.map(
    (f) => html`<tr><td class="mono"><a href="/facilities/${f.facility}">${f.facility}</a></td><td>${f.name ?? '—'}</td><td>${STANDING[f.standing]!.ja}<span class="en">${STANDING[f.standing]!.en}</span></td><td>${f.connections}</td><td>${f.wouldBeRefused}</td><td>${f.problems.map((p) => html`<div>${p.ja}：${p.fixJa}<span class="en">${p.en}: ${p.fixEn}</span></div>`)}</td><td>${f.lastSeen ?? '—'}</td></tr>`,
  )}</tbody></table>
${m.unidentified.length
    ? html`<h2>${bi('証明書を提示しなかったクライアント', 'Clients that showed no certificate')}</h2><table><thead><tr><th>${bi('アドレス', 'Address')}</th><th>${bi('ClientHello', 'ClientHello')}</th><th>${bi('接続数', 'Connections')}</th><th>${bi('拒否理由', 'Refusal')}</th><th>${bi('最終接続', 'Last seen')}</th></tr></thead>
<tbody>${m.unidentified.map((u) => html`<tr><td class="mono">${u.address}</td><td class="mono">${u.offeredVersions}</td><td>${u.connections}</td><td class="mono">${u.refusal}</td><td>${u.lastSeen}</td></tr>`)}</tbody></table>`
    : ''}`;
}

/** Refusals in the last day, the audit trail (search and verification), migration readiness. */
export function registerReportViews(r: ConsoleRoutes): void {
  r.nav({ path: '/refusals', ja: '接続拒否', en: 'Refusals', permission: 'reports.read', order: 50 });
  r.nav({ path: '/audit', ja: '監査証跡', en: 'Audit trail', permission: 'audit.read', order: 60 });
  r.nav({ path: '/migration', ja: '移行準備', en: 'Migration readiness', permission: 'reports.read', order: 70 });

  r.page('GET', '/refusals', 'reports.read', async (c) => {
    const hours = refusalHours(c.req.query('hours'));
    const s = await refusalSummary(r.deps.ca.db, r.deps.now(), hours);
    return r.render(c, { title: { ja: 'ゲートウェイの接続拒否', en: 'Gateway refusals' }, current: '/refusals', body: refusalsBody(s, hours) });
  });

  r.page('GET', '/audit', 'audit.read', async (c) => {
    const input = auditSearchOf(c);
    const search = parseAuditSearch({ ...input, limit: input.limit ?? '100' });
    const [status, events] = await Promise.all([trailStatus(r), r.deps.ca.audit.search(search)]);
    return r.render(c, { title: { ja: '監査証跡', en: 'Audit trail' }, current: '/audit', body: trailBody(status, events, input, search.limit ?? 100) });
  });

  r.page('GET', '/migration', 'reports.read', async (c) => {
    const filter = parseMigrationFilter({ to: c.req.query('to') || 'high', ...(c.req.query('since') ? { since: c.req.query('since')! } : {}) }, r.deps.now());
    const m = await migrationReadiness(r.deps.ca.db, filter, r.deps.now());
    return r.render(c, { title: { ja: '移行準備状況', en: 'Migration readiness' }, current: '/migration', body: migrationBody(m) });
  });
}
