import type { FacilityReadiness, MigrationReadiness } from './migration-readiness.js';

/**
 * The migration readiness report as one printable page (A4, Japanese first,
 * English beside): no script, no external asset, a Content-Security-Policy
 * forbidding both, every value escaped (addresses, suites and serials come
 * from clients).
 */
const esc = (v: unknown) => String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const STANDING: Record<FacilityReadiness['standing'], string> = {
  ready: '移行可 <span class="en">ready</span>',
  'at-risk': '要対応 <span class="en">at risk</span>',
  'not-seen-since': '期間内の接続なし <span class="en">not seen since</span>',
  'never-seen': '接続記録なし <span class="en">never seen</span>',
};

const STYLE = `
@page { size: A4; margin: 12mm 10mm; }
body { font-family: "Noto Sans CJK JP", "IPAexGothic", sans-serif; font-size: 8.5pt; color: #000; margin: 0; }
h1 { font-size: 14pt; margin: 0 0 2mm; }
h2 { font-size: 11pt; margin: 5mm 0 1mm; border-bottom: 0.4mm solid #000; break-after: avoid; }
.en { color: #444; font-weight: normal; }
table { border-collapse: collapse; width: 100%; table-layout: fixed; }
th, td { border: 0.2mm solid #666; padding: 0.6mm 1mm; vertical-align: top; overflow-wrap: anywhere; }
th { background: #eee; text-align: left; }
tr { break-inside: avoid; }
thead { display: table-header-group; }
.num { text-align: right; }
.risk td { background: #fff3f3; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.5mm 4mm; margin: 0 0 2mm; }
dt { font-weight: bold; }
dd { margin: 0; }
p.fix { margin: 0.5mm 0 0; }
`;

function facilityRow(f: FacilityReadiness, url: string | null): string {
  const problems = f.problems
    .map(
      (p) => `<p><b>${esc(p.code)}</b> ${esc(p.ja)}<br><span class="en">${esc(p.en)}</span></p>
<p class="fix">対処 <span class="en">fix</span>: ${esc(p.fixJa)}<br><span class="en">${esc(p.fixEn)}</span>${url && (p.code === 'PROTOCOL_TOO_OLD' || p.code === 'SUITE_NOT_ALLOWED') ? `<br>接続確認 <span class="en">self-check</span>: ${esc(url)}` : ''}</p>
<p class="en">${esc(p.seenWith.join('; '))}${p.exceptions.length ? ` — 例外 exception ${esc(p.exceptions.join(', '))}` : ''}</p>`,
    )
    .join('');
  const other = Object.entries(f.otherRefusals).map(([k, v]) => `${esc(k)} × ${v}`).join(', ');
  return `<tr class="${f.standing === 'at-risk' ? 'risk' : ''}"><td>${esc(f.facility)}<br>${esc(f.name)}</td><td>${STANDING[f.standing]}</td><td class="num">${f.connections}<br>${f.wouldBeRefused}</td><td>${esc(f.lastSeen ?? '—')}</td><td>${problems}${other ? `<p class="en">${other}</p>` : ''}${!f.problems.length && f.seenWith.length ? `<span class="en">${esc(f.seenWith.slice(0, 3).join('; '))}</span>` : ''}</td></tr>`;
}

export function migrationReadinessHtml(m: MigrationReadiness): string {
  const t = m.totals;
  const order: FacilityReadiness['standing'][] = ['at-risk', 'not-seen-since', 'never-seen', 'ready'];
  const facilities = [...m.facilities].sort((a, b) => order.indexOf(a.standing) - order.indexOf(b.standing) || (a.facility < b.facility ? -1 : 1));
  const clients = m.unidentified.filter((c) => c.problems.length);
  return `<!DOCTYPE html>
<html lang="ja"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>移行準備状況 Migration readiness → ${esc(m.target.profile)}</title>
<style>${STYLE}</style></head>
<body>
<h1>移行準備状況 <span class="en">Migration readiness</span></h1>
<dl>
<dt>移行先 <span class="en">target</span></dt><dd>${esc(m.target.nameJa)} (${esc(m.target.profile)})</dd>
<dt>期間 <span class="en">window</span></dt><dd>${esc(m.window.since)} – ${esc(m.window.until)} (日本時間 JST)</dd>
<dt>集計 <span class="en">totals</span></dt><dd>移行可 ${t.ready} / 要対応 ${t['at-risk']} / 期間内の接続なし ${t['not-seen-since']} / 接続記録なし ${t['never-seen']} / 証明書なしの接続元 ${t.unidentifiedClients}</dd>
${m.selfCheckUrl ? `<dt>接続確認ページ <span class="en">self-check</span></dt><dd>${esc(m.selfCheckUrl)}</dd>` : ''}
<dt>作成日時 <span class="en">generated</span></dt><dd>${esc(m.generatedAt)}</dd>
<dt>出典 <span class="en">source</span></dt><dd>ゲートウェイの接続観測（日別集計）を移行先のポリシーで判定。期限付き例外は考慮しません。 <span class="en">the gateway's daily connection observations, judged by the target policy without dated exceptions</span></dd>
</dl>
<h2>医療機関 <span class="en">facilities</span></h2>
<table><colgroup><col style="width:16%"><col style="width:11%"><col style="width:8%"><col style="width:14%"><col style="width:51%"></colgroup>
<thead><tr><th>医療機関番号・名称 <span class="en">facility</span></th><th>状況 <span class="en">standing</span></th><th>接続/拒否予定 <span class="en">conn. / would refuse</span></th><th>最終接続 <span class="en">last seen (UTC)</span></th><th>問題と対処 <span class="en">problems and fixes</span></th></tr></thead>
<tbody>${facilities.map((f) => facilityRow(f, m.selfCheckUrl)).join('') || '<tr><td colspan="5">登録された医療機関はありません。 <span class="en">No facility.</span></td></tr>'}</tbody></table>
${clients.length ? `<h2>証明書を提示しなかった接続元 <span class="en">clients that showed no certificate</span></h2>
<table><thead><tr><th>接続元 <span class="en">address</span></th><th>提示内容 <span class="en">offered</span></th><th>接続 <span class="en">conn.</span></th><th>問題と対処 <span class="en">problems and fixes</span></th></tr></thead><tbody>
${clients.map((c) => `<tr class="risk"><td>${esc(c.address)}<br><span class="en">${esc(c.lastSeen)}</span></td><td>${esc(c.offeredVersions)}<br><span class="en">${esc(c.offeredSuites)}</span></td><td class="num">${c.connections}</td><td>${c.problems.map((p) => `<p><b>${esc(p.code)}</b> ${esc(p.ja)}</p><p class="fix">対処: ${esc(p.fixJa)}</p>`).join('')}${m.selfCheckUrl ? `<p>接続確認 <span class="en">self-check</span>: ${esc(m.selfCheckUrl)}</p>` : ''}</td></tr>`).join('')}
</tbody></table>` : ''}
${m.legacyCertificates.length || m.unusedCertificates.length ? `<h2>証明書の例外 <span class="en">certificate exceptions</span></h2>
<table><thead><tr><th>医療機関番号 <span class="en">facility</span></th><th>シリアル <span class="en">serial</span></th><th>内容 <span class="en">finding</span></th><th>接続 <span class="en">conn.</span></th><th>最終 <span class="en">last seen</span></th></tr></thead><tbody>
${m.legacyCertificates.map((l) => `<tr class="risk"><td>${esc(l.facility ?? '—')}</td><td>${esc(l.serial)}</td><td>旧証明書を使用中 <span class="en">legacy certificate in use</span>: ${esc(l.rule)} (${esc(l.signature)}, ${esc(l.key)})${l.exceptions ? `<br>例外 <span class="en">exception</span> ${esc(l.exceptions)}` : ''}</td><td class="num">${l.connections}</td><td>${esc(l.lastSeen)}</td></tr>`).join('')}
${m.unusedCertificates.map((u) => `<tr><td>${esc(u.facility)}</td><td>${esc(u.serial)}</td><td>新しい証明書が未使用 <span class="en">newer certificate never used</span> (発行 issued ${esc(u.issuedAt ?? '?')}; 使用中 still using ${esc(u.stillUsing.join(', '))})</td><td class="num">0</td><td>—</td></tr>`).join('')}
</tbody></table>` : ''}
<h2>日別 <span class="en">per day</span></h2>
<table><thead><tr><th>日付 <span class="en">day</span></th><th>接続 <span class="en">connections</span></th><th>拒否予定 <span class="en">would be refused</span></th><th>接続した医療機関 <span class="en">facilities seen</span></th><th>要対応 <span class="en">at risk</span></th></tr></thead><tbody>
${m.daily.map((d) => `<tr><td>${esc(d.day)}</td><td class="num">${d.connections}</td><td class="num">${d.wouldBeRefused}</td><td class="num">${d.facilitiesSeen}</td><td class="num">${d.facilitiesAtRisk}</td></tr>`).join('') || '<tr><td colspan="5">記録なし <span class="en">no observation</span></td></tr>'}
</tbody></table>
</body></html>
`;
}
