import type { AccessReview, AccessRow } from './access-review.js';

/**
 * The access review as one printable HTML page (A4, Japanese first with the
 * English beside it): no script, no external asset, a Content-Security-Policy
 * that forbids both, and every value from the audit trail escaped, so a path
 * or subject a client chose is printed as text.
 */
const esc = (v: unknown) =>
  String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const OUTCOME: Record<AccessRow['outcome'], string> = {
  accepted: '接続 / accepted',
  cut: '切断 / cut',
  open: '終了記録なし / no end recorded',
  refused: '拒否 / refused',
};

const STYLE = `
@page { size: A4; margin: 12mm 10mm; }
body { font-family: "Noto Sans CJK JP", "IPAexGothic", sans-serif; font-size: 8.5pt; color: #000; margin: 0; }
h1 { font-size: 14pt; margin: 0 0 2mm; }
h2 { font-size: 11pt; margin: 5mm 0 1mm; border-bottom: 0.4mm solid #000; break-after: avoid; }
h3 { font-size: 9.5pt; margin: 3mm 0 1mm; break-after: avoid; }
.en { color: #444; font-weight: normal; }
table { border-collapse: collapse; width: 100%; table-layout: fixed; }
th, td { border: 0.2mm solid #666; padding: 0.6mm 1mm; vertical-align: top; overflow-wrap: anywhere; }
th { background: #eee; text-align: left; font-weight: bold; }
tr { break-inside: avoid; }
thead { display: table-header-group; }
.num { text-align: right; }
.refused td { background: #fff3f3; }
ul.ops { margin: 0; padding-left: 3mm; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.5mm 4mm; margin: 0 0 2mm; }
dt { font-weight: bold; }
dd { margin: 0; }
`;

function rowHtml(r: AccessRow): string {
  const ops = r.operations.length ? `<ul class="ops">${r.operations.map((o) => `<li>${esc(o)}</li>`).join('')}${r.operationsMore ? `<li>他 ${r.operationsMore} 件 / +${r.operationsMore} more</li>` : ''}</ul>` : '';
  return `<tr class="${r.kind === 'refusal' ? 'refused' : 'conn'}">
<td>${esc(r.startLocal.slice(11, 23))}<br><span class="en">${esc(r.startUtc)}</span></td>
<td>${esc(OUTCOME[r.outcome])}${r.reason ? `<br>${esc(r.reason)}` : ''}${r.count > 1 ? `<br>× ${r.count}` : ''}</td>
<td class="num">${r.durationSeconds === null ? '—' : esc(r.durationSeconds.toFixed(3))}</td>
<td class="num">${r.bytesIn === null ? '—' : esc(r.bytesIn)}<br>${r.bytesOut === null ? '—' : esc(r.bytesOut)}</td>
<td>${esc(r.listener)}<br>${esc(r.client)}</td>
<td>${esc(r.serial ?? (r.facility ? '' : r.actor))}</td>
<td>${ops}${r.detail ? `<span class="en">${esc(r.detail)}</span>` : ''}</td>
</tr>`;
}

export function accessReviewHtml(r: AccessReview): string {
  const f = r.filter;
  const groups = new Map<string, AccessRow[]>();
  for (const row of r.rows) {
    const k = `${row.date}|${row.facility ?? ''}`;
    (groups.get(k) ?? groups.set(k, []).get(k)!).push(row);
  }
  let body = '';
  let day = '';
  for (const [k, rows] of groups) {
    const [date, facility] = k.split('|') as [string, string];
    if (date !== day) {
      body += `<h2>${esc(date)} <span class="en">(${esc(f.zone)})</span></h2>`;
      day = date;
    }
    const s = r.summary.find((x) => x.date === date && (x.facility ?? '') === facility)!;
    body += `<section><h3>${facility ? `医療機関番号 ${esc(facility)} <span class="en">facility</span>` : '識別できない接続元 <span class="en">clients without an identity</span>'}
 — 接続 ${s.connections} 件 <span class="en">connections</span>, 拒否 ${s.refusals} 件 <span class="en">refusals</span></h3>
<table><colgroup><col style="width:13%"><col style="width:13%"><col style="width:8%"><col style="width:9%"><col style="width:15%"><col style="width:12%"><col style="width:30%"></colgroup>
<thead><tr><th>開始時刻 <span class="en">start (local / UTC)</span></th><th>結果 <span class="en">outcome, reason</span></th><th>接続時間(秒) <span class="en">duration s</span></th><th>受信/送信 バイト <span class="en">bytes in / out</span></th><th>受付口・接続元 <span class="en">listener, client</span></th><th>証明書シリアル <span class="en">serial</span></th><th>操作内容 <span class="en">operations</span></th></tr></thead>
<tbody>${rows.map(rowHtml).join('')}</tbody></table></section>`;
  }
  if (!r.rows.length) body = '<p>該当する記録はありません。 <span class="en">No access recorded for this selection.</span></p>';
  return `<!DOCTYPE html>
<html lang="ja"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>アクセス記録 Access review ${esc(f.from)} – ${esc(f.to)}</title>
<style>${STYLE}</style></head>
<body>
<h1>アクセス記録 <span class="en">Access review</span></h1>
<dl>
<dt>期間 <span class="en">period</span></dt><dd>${esc(f.from)} – ${esc(f.to)} (${esc(f.zone)}; UTC ${esc(r.range.fromUtc)} – ${esc(r.range.toUtc)})</dd>
<dt>医療機関 <span class="en">facility</span></dt><dd>${f.facility ? esc(f.facility) : 'すべて <span class="en">all</span>'}</dd>
<dt>結果 <span class="en">outcome</span></dt><dd>${esc(f.outcome)}</dd>
<dt>作成日時 <span class="en">generated</span></dt><dd>${esc(r.generatedAt)}</dd>
<dt>出典 <span class="en">source</span></dt><dd>ハッシュ連鎖された監査証跡 (gateway.* イベント、seq は sekisho audit list で照合) <span class="en">the hash-chained audit trail</span></dd>
</dl>
${body}
</body></html>
`;
}
