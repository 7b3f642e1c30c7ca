import { terminalText } from '../errors/index.js';
import type { Findings } from './findings.js';
import type { Verdict } from './verdict.js';
import type { CheckStatus } from './check.js';

/** A scan as reported: the findings and the verdict against one profile. */
export interface ScanReport {
  tool: 'sekisho scan';
  version: 1;
  target: string;
  profile: string;
  verdict: 'compliant' | 'not compliant';
  compliant: boolean;
  checks: Verdict['results'];
  findings: Findings;
}

export function buildReport(findings: Findings, verdict: Verdict): ScanReport {
  return {
    tool: 'sekisho scan',
    version: 1,
    target: `${findings.target.host}:${findings.target.port}`,
    profile: verdict.profile,
    verdict: verdict.compliant ? 'compliant' : 'not compliant',
    compliant: verdict.compliant,
    checks: verdict.results,
    findings,
  };
}

const LABEL: Record<CheckStatus, string> = { pass: 'PASS', fail: 'FAIL', warn: 'WARN', info: 'INFO', skip: 'SKIP' };

/**
 * One line per check: verdict, what was found, what the profile requires, and where the rule comes from.
 * What a server controls (certificate subjects and names, alert text, CA names) is shown through
 * `terminalText`, so an escape sequence cannot hide the verdict or print a false one.
 */
export function textReport(r: ScanReport): string {
  const lines = [`sekisho scan ${terminalText(r.target)} — profile ${r.profile} — ${r.findings.durationMs} ms`];
  for (const c of r.checks) lines.push(`${LABEL[c.status]}  ${terminalText(c.title)}: ${terminalText(c.found)}  [required: ${c.required}; ${c.cites}]`);
  for (const n of r.findings.notes) lines.push(`NOTE  ${terminalText(n)}`);
  const fails = r.checks.filter((c) => c.status === 'fail').length;
  lines.push(r.compliant ? `VERDICT: compliant with ${r.profile} (適合)` : `VERDICT: NOT compliant with ${r.profile}: ${fails} failing check(s) (不適合)`);
  return lines.join('\n');
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** A self-contained, printable page an operator hands to an auditor. */
export function htmlReport(r: ScanReport): string {
  const rows = r.checks
    .map((c) => `<tr class="${c.status}"><td class="st">${LABEL[c.status]}</td><td>${esc(c.title)}</td><td>${esc(c.found)}</td><td>${esc(c.required)}</td><td class="cite">${esc(c.cites)}</td></tr>`)
    .join('\n');
  const protocols = r.findings.protocols
    .map((p) => `<tr><td>${p.protocol}</td><td>${p.supported ? '✔' : '—'}</td><td>${p.suites.map(esc).join('<br>')}</td><td>${p.serverOrder === undefined ? '' : p.serverOrder ? 'server' : 'client'}</td></tr>`)
    .join('\n');
  return `<!doctype html>
<html lang="ja"><head><meta charset="utf-8">
<title>TLS 適合性診断 / TLS compliance report — ${esc(r.target)}</title>
<style>
@page { size: A4; margin: 15mm; }
body { font-family: "Noto Sans CJK JP", "Hiragino Sans", "Yu Gothic", sans-serif; font-size: 10pt; color: #111; margin: 2em; }
h1 { font-size: 15pt; margin-bottom: .2em; } h2 { font-size: 12pt; margin-top: 1.5em; }
.verdict { font-size: 13pt; font-weight: bold; padding: .5em .8em; display: inline-block; border: 2px solid; }
.verdict.ok { color: #0a5; } .verdict.ng { color: #c00; }
table { border-collapse: collapse; width: 100%; margin-top: .5em; } th, td { border: 1px solid #999; padding: 3px 6px; vertical-align: top; text-align: left; }
th { background: #eee; } td.st { font-weight: bold; white-space: nowrap; } td.cite { font-size: 8.5pt; color: #444; }
tr.fail td.st { color: #c00; } tr.warn td.st { color: #b60; } tr.pass td.st { color: #0a5; } tr.info td.st, tr.skip td.st { color: #666; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 12px; } dt { font-weight: bold; }
</style></head>
<body>
<h1>TLS 適合性診断報告書 / TLS compliance report</h1>
<dl>
<dt>対象 / Target</dt><dd>${esc(r.target)}${r.findings.target.serverName ? ` (SNI ${esc(r.findings.target.serverName)})` : ''}</dd>
<dt>基準 / Profile</dt><dd>${esc(r.profile)}</dd>
<dt>診断日時 / Scanned at</dt><dd>${esc(r.findings.scannedAt)} (${r.findings.durationMs} ms)</dd>
<dt>ツール / Tool</dt><dd>sekisho scan</dd>
</dl>
<p class="verdict ${r.compliant ? 'ok' : 'ng'}">${r.compliant ? '適合 / Compliant' : '不適合 / Not compliant'}</p>
<h2>判定 / Checks</h2>
<table><thead><tr><th>結果</th><th>項目 / Item</th><th>検出 / Found</th><th>要件 / Required</th><th>根拠 / Source</th></tr></thead>
<tbody>
${rows}
</tbody></table>
<h2>プロトコルと暗号スイート / Protocols and cipher suites</h2>
<table><thead><tr><th>Protocol</th><th>Offered</th><th>Accepted suites</th><th>Order</th></tr></thead>
<tbody>
${protocols}
</tbody></table>
${r.findings.notes.length ? `<h2>注記 / Notes</h2><ul>${r.findings.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : ''}
</body></html>
`;
}
