import { html } from 'hono/html';
import { badRequest } from '../../errors/index.js';
import type { ConsoleRoutes } from '../app.js';
import { flashOf } from '../flash.js';
import { bi, csrfField } from '../layout.js';
import { ROLE_LABELS } from '../roles.js';

/**
 * The operators view (admin): who may use the console, with which role and
 * certificate; revoke one (operator and certificate, one transaction). Adding
 * an operator stays on the CA host (`sekisho operator add`): it hands over a
 * PKCS#12 and its password, which never pass through a browser.
 */
export function registerOperatorsView(r: ConsoleRoutes): void {
  r.nav({ path: '/operators', ja: 'オペレーター', en: 'Operators', permission: 'operators.manage', order: 90 });

  r.page('GET', '/operators', 'operators.manage', async (c) => {
    const list = await r.deps.ca.listOperators();
    const me = c.get('operator');
    const token = r.token(c);
    return r.render(c, {
      title: { ja: 'オペレーター', en: 'Operators' },
      current: '/operators',
      ...(flashOf(c.req.query('done')) ? { flash: flashOf(c.req.query('done'))! } : {}),
      body: html`<p class="muted">追加は CA ホストで <code>sekisho operator add</code> を実行します。<span class="en">Add operators on the CA host with <code>sekisho operator add</code>.</span></p>
<table>
<thead><tr><th>${bi('名前', 'Name')}</th><th>${bi('役割', 'Role')}</th><th>${bi('状態', 'Status')}</th><th>${bi('証明書シリアル', 'Certificate serial')}</th><th>${bi('追加日', 'Added')}</th><th class="action no-print">${bi('操作', 'Action')}</th></tr></thead>
<tbody>${list.map(
        (o) => html`<tr><td>${o.name}</td><td>${ROLE_LABELS[o.role].ja}<span class="en">${ROLE_LABELS[o.role].en}</span></td><td><span class="status-${o.status}">${o.status === 'active' ? '有効' : '失効'}</span><span class="en">${o.status}</span></td><td class="mono">${o.certificateSerial}</td><td>${o.createdAt.slice(0, 10)}</td><td class="action no-print">${o.status === 'active' && o.name !== me.name
          ? html`<form class="inline" method="post" action="/operators/${o.name}/revoke">${csrfField(token)}<label><input type="checkbox" name="confirm" value="yes" required> 確認<span class="en">confirm</span></label> <button type="submit" class="danger">失効<span class="en">Revoke</span></button></form>`
          : ''}</td></tr>`,
      )}</tbody>
</table>`,
    });
  });

  r.page('POST', '/operators/:name/revoke', 'operators.manage', async (c, form) => {
    if (form.confirm !== 'yes') {
      throw badRequest('CONFIRMATION_MISSING', 'tick the confirmation to revoke', { ja: '確認のチェックを入れてください。' });
    }
    await r.deps.ca.revokeOperator(c.req.param('name') ?? '', c.get('operator').actor);
    return c.redirect('/operators?done=operator-revoked', 303);
  });
}
