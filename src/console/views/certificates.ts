import { html } from 'hono/html';
import { badRequest, notFound } from '../../errors/index.js';
import { OPERATOR_REVOCATION_REASONS, parseRevocationReason, reasonFromCode } from '../../pki/index.js';
import type { CertificateRecord, CertificateStatus } from '../../store/index.js';
import type { ConsoleRoutes } from '../app.js';
import { flashOf } from '../flash.js';
import { bi, csrfField, type Markup } from '../layout.js';
import { may } from '../roles.js';

export interface CertificateQuery {
  status?: CertificateStatus;
  profile?: string;
  /** Only certificates whose notAfter is before this (ISO date). */
  expiresBefore?: string;
  facilityNumber?: string;
}

const PROFILES = ['facility', 'device', 'server', 'operator'] as const;

/** The filters of the certificates view and its API, from query parameters (unknown values are refused, not ignored). */
export function parseCertificateQuery(q: (name: string) => string | undefined): CertificateQuery {
  const out: CertificateQuery = {};
  const status = q('status');
  if (status) {
    if (!['reserved', 'issued', 'revoked'].includes(status)) throw badRequest('STATUS_UNKNOWN', 'status must be reserved, issued or revoked');
    out.status = status as CertificateStatus;
  }
  const profile = q('profile');
  if (profile) {
    if (!(PROFILES as readonly string[]).includes(profile)) throw badRequest('PROFILE_UNKNOWN', `profile must be one of ${PROFILES.join(', ')}`);
    out.profile = profile;
  }
  const before = q('expiresBefore');
  if (before) {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(before) || Number.isNaN(Date.parse(before))) throw badRequest('DATE_INVALID', 'expiresBefore must be a date YYYY-MM-DD');
    out.expiresBefore = before;
  }
  const facility = q('facility');
  if (facility) out.facilityNumber = facility;
  return out;
}

export async function findCertificates(r: ConsoleRoutes, f: CertificateQuery): Promise<CertificateRecord[]> {
  await r.deps.ca.applyDueRevocations();
  const list = await r.deps.ca.listCertificates({ ...(f.status ? { status: f.status } : {}), ...(f.facilityNumber ? { facilityNumber: f.facilityNumber } : {}) });
  return list.filter((c) => (!f.profile || c.profile === f.profile) && (!f.expiresBefore || c.notAfter < f.expiresBefore) && c.profile !== 'root-ca' && c.profile !== 'issuing-ca');
}

/** A certificate as the API shows it (no DER). */
export const certificateJson = (c: CertificateRecord) => ({
  serial: c.serial,
  status: c.status,
  profile: c.profile,
  subject: c.subject,
  facilityNumber: c.facilityNumber ?? null,
  notBefore: c.notBefore,
  notAfter: c.notAfter,
  revokedAt: c.revokedAt ?? null,
  revocationReason: c.revocationReason !== undefined && c.revocationReason !== null ? (reasonFromCode(c.revocationReason) ?? null) : null,
});

const STATUS_JA: Record<CertificateStatus, string> = { reserved: '予約', issued: '有効', revoked: '失効' };

/** The certificate table (also on a facility's page); a revoke link for those who may revoke. */
export function certificateRows(list: CertificateRecord[], canRevoke: boolean): Markup {
  if (!list.length) return html`<p class="muted">証明書はありません。<span class="en">No certificates.</span></p>`;
  return html`<table>
<thead><tr><th>${bi('シリアル', 'Serial')}</th><th>${bi('状態', 'Status')}</th><th>${bi('種別', 'Profile')}</th><th>${bi('主体者', 'Subject')}</th><th>${bi('有効期限', 'Expires')}</th>${canRevoke ? html`<th class="action no-print">${bi('操作', 'Action')}</th>` : ''}</tr></thead>
<tbody>${list.map(
    (c) => html`<tr><td class="mono">${c.serial}</td><td><span class="status-${c.status}">${STATUS_JA[c.status]}</span><span class="en">${c.status}</span></td><td>${c.profile}</td><td>${c.subject}${c.facilityNumber ? html` <a class="no-print" href="/facilities/${c.facilityNumber}">${c.facilityNumber}</a>` : ''}</td><td>${c.notAfter.slice(0, 10)}</td>${canRevoke ? html`<td class="action no-print">${c.status === 'issued' ? html`<a href="/certificates/${c.serial}/revoke">失効…<span class="en">Revoke…</span></a>` : ''}</td>` : ''}</tr>`,
  )}</tbody>
</table>`;
}

const REASON_JA: Record<string, string> = {
  unspecified: '理由なし',
  keyCompromise: '鍵の危殆化',
  cACompromise: 'CAの危殆化',
  affiliationChanged: '所属の変更',
  superseded: '置き換え',
  cessationOfOperation: '運用終了',
  certificateHold: '一時停止',
  privilegeWithdrawn: '権限の取り消し',
  aACompromise: 'AAの危殆化',
};

/** The certificates view: filter by status, profile, expiry; revoke (admin) after a confirmation page. */
export function registerCertificatesView(r: ConsoleRoutes): void {
  r.nav({ path: '/certificates', ja: '証明書', en: 'Certificates', permission: 'certificates.read', order: 20 });

  r.page('GET', '/certificates', 'certificates.read', async (c) => {
    const f = parseCertificateQuery((n) => c.req.query(n));
    const list = await findCertificates(r, f);
    const op = c.get('operator');
    return r.render(c, {
      title: { ja: '証明書', en: 'Certificates' },
      current: '/certificates',
      ...(flashOf(c.req.query('done')) ? { flash: flashOf(c.req.query('done'))! } : {}),
      body: html`<form class="panel" method="get" action="/certificates">
<label>${bi('状態', 'Status')} <select name="status"><option value="">すべて / all</option>${(['issued', 'revoked', 'reserved'] as const).map((s) => html`<option value="${s}"${f.status === s ? html` selected` : ''}>${STATUS_JA[s]} / ${s}</option>`)}</select></label>
<label>${bi('種別', 'Profile')} <select name="profile"><option value="">すべて / all</option>${PROFILES.map((p) => html`<option value="${p}"${f.profile === p ? html` selected` : ''}>${p}</option>`)}</select></label>
<label>${bi('この日より前に期限切れ', 'Expiring before')} <input type="text" name="expiresBefore" placeholder="YYYY-MM-DD" pattern="[0-9]{4}-[0-9]{2}-[0-9]{2}" value="${f.expiresBefore ?? ''}" maxlength="10"></label>
<button type="submit">絞り込み<span class="en">Filter</span></button>
</form>
<p class="muted">${list.length} 件<span class="en">${list.length} certificate(s)</span></p>
${certificateRows(list, may(op.role, 'certificates.revoke'))}`,
    });
  });

  r.page('GET', '/certificates/:serial/revoke', 'certificates.revoke', async (c) => {
    const cert = await r.deps.ca.certificate(c.req.param('serial') ?? '');
    if (!cert) throw notFound('CERTIFICATE_UNKNOWN', 'no such certificate; see the certificates list');
    return r.render(c, {
      title: { ja: '証明書の失効', en: 'Revoke a certificate' },
      current: '/certificates',
      body: html`<dl class="facts">
<dt>${bi('シリアル', 'Serial')}</dt><dd class="mono">${cert.serial}</dd>
<dt>${bi('主体者', 'Subject')}</dt><dd>${cert.subject}</dd>
<dt>${bi('種別', 'Profile')}</dt><dd>${cert.profile}</dd>
<dt>${bi('有効期限', 'Expires')}</dt><dd>${cert.notAfter.slice(0, 10)}</dd>
<dt>${bi('状態', 'Status')}</dt><dd>${STATUS_JA[cert.status]} / ${cert.status}</dd>
</dl>
<form class="panel" method="post" action="/certificates/${cert.serial}/revoke">${csrfField(r.token(c))}
<p><strong>この証明書を失効させます。取り消すことはできません。</strong><span class="en">This revokes the certificate for good; it cannot be undone.</span></p>
<label>${bi('失効理由（RFC 5280）', 'Reason (RFC 5280)')} <select name="reason" required><option value="">—</option>${OPERATOR_REVOCATION_REASONS.map((x) => html`<option value="${x}">${REASON_JA[x] ?? x} / ${x}</option>`)}</select></label>
<label><input type="checkbox" name="confirm" value="yes" required> 確認しました<span class="en">I confirm</span></label>
<button type="submit" class="danger">失効させる<span class="en">Revoke</span></button>
<a class="nowrap" href="/certificates">キャンセル<span class="en">Cancel</span></a>
</form>`,
    });
  });

  r.page('POST', '/certificates/:serial/revoke', 'certificates.revoke', async (c, form) => {
    if (form.confirm !== 'yes') throw badRequest('CONFIRMATION_MISSING', 'tick the confirmation to revoke', { ja: '確認のチェックを入れてください。' });
    const rec = await r.deps.ca.revoke(c.req.param('serial') ?? '', parseRevocationReason(form.reason ?? ''), c.get('operator').actor);
    return c.redirect(rec.facilityNumber ? `/facilities/${rec.facilityNumber}?done=certificate-revoked` : '/certificates?done=certificate-revoked', 303);
  });
}
