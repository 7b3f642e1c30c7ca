import { html } from 'hono/html';
import { notFound } from '../../errors/index.js';
import { parseFacilityNumber } from '../../policy/index.js';
import type { CertificateRecord, Facility, FacilityStatus } from '../../store/index.js';
import type { NoticeSummary } from '../../ca/index.js';
import type { ConsoleRoutes } from '../app.js';
import { flashOf } from '../flash.js';
import { bi, csrfField } from '../layout.js';
import { may } from '../roles.js';
import { certificateRows } from './certificates.js';
import { noticeRows } from './notices.js';

/** Facilities whose number or name contains `q` (case-insensitive), optionally of one status. */
export function searchFacilities(list: Facility[], q: string, status: FacilityStatus | undefined): Facility[] {
  const needle = q.trim().normalize('NFC').toLowerCase();
  return list.filter((f) => (!status || f.status === status) && (!needle || f.number.includes(needle) || f.name.toLowerCase().includes(needle)));
}

export function parseFacilityStatus(v: string | undefined): FacilityStatus | undefined {
  return v === 'active' || v === 'suspended' ? v : undefined;
}

const STATUS_LABEL: Record<FacilityStatus, { ja: string; en: string }> = { active: { ja: '利用中', en: 'active' }, suspended: { ja: '利用停止', en: 'suspended' } };
const statusCell = (s: FacilityStatus) => html`<span class="status-${s}">${STATUS_LABEL[s].ja}</span><span class="en">${STATUS_LABEL[s].en}</span>`;

/** The facilities view: search, register, a facility's certificates and notices, suspend and resume. */
export function registerFacilitiesView(r: ConsoleRoutes): void {
  r.nav({ path: '/facilities', ja: '医療機関', en: 'Facilities', permission: 'facilities.read', order: 10 });

  r.page('GET', '/facilities', 'facilities.read', async (c) => {
    const q = (c.req.query('q') ?? '').slice(0, 64);
    const status = parseFacilityStatus(c.req.query('status'));
    const list = searchFacilities(await r.deps.ca.listFacilities(), q, status);
    const op = c.get('operator');
    const token = r.token(c);
    return r.render(c, {
      title: { ja: '医療機関', en: 'Facilities' },
      current: '/facilities',
      ...(flashOf(c.req.query('done')) ? { flash: flashOf(c.req.query('done'))! } : {}),
      body: html`<form class="panel" method="get" action="/facilities" role="search">
<label>${bi('医療機関番号・名称', 'Number or name')} <input type="search" name="q" value="${q}" maxlength="64"></label>
<label>${bi('状態', 'Status')} <select name="status"><option value="">${'すべて / all'}</option>${(['active', 'suspended'] as const).map((s) => html`<option value="${s}"${status === s ? html` selected` : ''}>${STATUS_LABEL[s].ja} / ${STATUS_LABEL[s].en}</option>`)}</select></label>
<button type="submit">検索<span class="en">Search</span></button>
</form>
<table>
<thead><tr><th>${bi('医療機関番号', 'Number')}</th><th>${bi('名称', 'Name')}</th><th>${bi('状態', 'Status')}</th><th>${bi('登録日', 'Registered')}</th></tr></thead>
<tbody>${list.length
        ? list.map((f) => html`<tr><td class="mono"><a href="/facilities/${f.number}">${f.number}</a></td><td>${f.name}</td><td>${statusCell(f.status)}</td><td>${f.createdAt.slice(0, 10)}</td></tr>`)
        : html`<tr><td colspan="4" class="muted">該当する医療機関はありません。<span class="en">No facility matches.</span></td></tr>`}</tbody>
</table>
${may(op.role, 'facilities.write')
        ? html`<h2>医療機関の登録<span class="en">Register a facility</span></h2>
<form class="panel" method="post" action="/facilities">${csrfField(token)}
<label>${bi('医療機関番号（10桁）', 'Number (10 digits)')} <input type="text" name="number" required inputmode="numeric" pattern="[0-9]{10}" maxlength="10"></label>
<label>${bi('名称', 'Name')} <input type="text" name="name" required maxlength="64"></label>
<label>${bi('所在地', 'Address')} <input type="text" name="address" maxlength="200"></label>
<label>${bi('連絡先', 'Contact')} <input type="text" name="contact" maxlength="200"></label>
<button type="submit">登録<span class="en">Register</span></button>
</form>`
        : ''}`,
    });
  });

  r.page('POST', '/facilities', 'facilities.write', async (c, form) => {
    const f = await r.deps.ca.addFacility(
      { number: form.number ?? '', name: form.name ?? '', ...(form.address ? { address: form.address } : {}), ...(form.contact ? { contact: form.contact } : {}) },
      c.get('operator').actor,
    );
    return c.redirect(`/facilities/${f.number}?done=facility-added`, 303);
  });

  r.page('GET', '/facilities/:number', 'facilities.read', async (c) => {
    const f = await facilityOrThrow(r, c.req.param('number'));
    const op = c.get('operator');
    const [certs, notices] = await Promise.all([may(op.role, 'certificates.read') ? r.deps.ca.listCertificates({ facilityNumber: f.number }) : Promise.resolve([] as CertificateRecord[]), may(op.role, 'notices.read') ? r.deps.ca.notices.list({ facilityNumber: f.number }) : Promise.resolve([] as NoticeSummary[])]);
    const token = r.token(c);
    const toggle = f.status === 'active' ? 'suspend' : 'resume';
    return r.render(c, {
      title: { ja: `医療機関 ${f.number}`, en: `Facility ${f.number}` },
      current: '/facilities',
      ...(flashOf(c.req.query('done')) ? { flash: flashOf(c.req.query('done'))! } : {}),
      body: html`<dl class="facts">
<dt>${bi('名称', 'Name')}</dt><dd>${f.name}</dd>
<dt>${bi('医療機関番号', 'Number')}</dt><dd class="mono">${f.number}</dd>
<dt>${bi('状態', 'Status')}</dt><dd>${statusCell(f.status)}</dd>
<dt>${bi('所在地', 'Address')}</dt><dd>${f.address ?? '—'}</dd>
<dt>${bi('連絡先', 'Contact')}</dt><dd>${f.contact ?? '—'}</dd>
<dt>${bi('登録日', 'Registered')}</dt><dd>${f.createdAt.slice(0, 10)}</dd>
</dl>
${may(op.role, 'facilities.write')
        ? html`<form class="panel" method="post" action="/facilities/${f.number}/${toggle}">${csrfField(token)}
${toggle === 'suspend'
            ? html`<button type="submit" class="danger">利用停止<span class="en">Suspend</span></button> <span class="muted">発行を止め、ゲートウェイが接続を拒否します。<span class="en">Stops issuance; gateways refuse the facility.</span></span>`
            : html`<button type="submit">利用再開<span class="en">Resume</span></button>`}
</form>`
        : ''}
${may(op.role, 'notices.write') && f.status === 'active' ? html`<p class="no-print"><a href="/notices?facility=${f.number}">発行通知を作成<span class="en">Create an issuance notice</span></a></p>` : ''}
${may(op.role, 'certificates.read') ? html`<h2>証明書<span class="en">Certificates</span></h2>${certificateRows(certs, may(op.role, 'certificates.revoke'))}` : ''}
${may(op.role, 'notices.read') ? html`<h2>発行通知<span class="en">Issuance notices</span></h2>${noticeRows(notices, may(op.role, 'notices.write') ? token : undefined)}` : ''}`,
    });
  });

  for (const word of ['suspend', 'resume'] as const) {
    r.page('POST', `/facilities/:number/${word}`, 'facilities.write', async (c) => {
      const f = await r.deps.ca.setFacilityStatus(c.req.param('number') ?? '', word === 'suspend' ? 'suspended' : 'active', c.get('operator').actor);
      return c.redirect(`/facilities/${f.number}?done=facility-${word === 'suspend' ? 'suspended' : 'resumed'}`, 303);
    });
  }
}

export async function facilityOrThrow(r: ConsoleRoutes, numberInput: string | undefined): Promise<Facility> {
  const number = parseFacilityNumber(numberInput ?? '');
  const f = await r.deps.ca.facility(number);
  if (!f) {
    throw notFound('FACILITY_UNKNOWN', `facility ${number} is not registered`, { ja: `医療機関 ${number} は登録されていません。` });
  }
  return f;
}
