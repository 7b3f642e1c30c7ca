import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import { ROLE_LABELS } from './roles.js';
import type { SignedInOperator } from './operator-auth.js';
import { CSRF_FIELD } from './csrf.js';

/** What a view hands the layout. Every value is escaped by `html`; only `html` results pass through as markup. */
export type Markup = HtmlEscapedString | Promise<HtmlEscapedString>;

export interface NavLink {
  path: string;
  ja: string;
  en: string;
}

export interface PageInput {
  /** Japanese first, English beside it. */
  title: { ja: string; en: string };
  body: Markup;
  operator?: SignedInOperator;
  /** The entries this operator may open (the registrar filters them by role). */
  nav?: NavLink[];
  /** The path of the current view (its nav entry is marked). */
  current?: string;
  /** A message after an action (POST-redirect-GET). */
  flash?: { ja: string; en: string; kind?: 'ok' | 'error' };
}

/** A label in both languages: `日本語 / English`, English in a smaller span. */
export const bi = (ja: string, en: string): Markup => html`${ja}<span class="en">${en}</span>`;

/** The hidden CSRF field of a form. */
export const csrfField = (token: string): Markup => html`<input type="hidden" name="${CSRF_FIELD}" value="${token}">`;

/** The whole page: header (who is signed in, their role), navigation, content; no script, no inline style. */
export function page(p: PageInput): Markup {
  const op = p.operator;
  return html`<!DOCTYPE html>
<html lang="ja">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>${p.title.ja} / ${p.title.en} — sekisho</title>
<link rel="stylesheet" href="/console.css">
</head>
<body>
<header class="top">
<div class="brand">関所 運営コンソール<span class="en">sekisho operator console</span></div>
${op ? html`<div class="who">${op.name} <span class="role">${ROLE_LABELS[op.role].ja} / ${ROLE_LABELS[op.role].en}</span></div>` : ''}
</header>
${p.nav?.length
    ? html`<nav class="main" aria-label="メニュー / Menu"><ul>${p.nav.map((n) => html`<li><a href="${n.path}"${p.current === n.path ? html` aria-current="page"` : ''}>${n.ja}<span class="en">${n.en}</span></a></li>`)}</ul></nav>`
    : ''}
<main>
<h1>${p.title.ja}<span class="en">${p.title.en}</span></h1>
${p.flash ? html`<p class="flash ${p.flash.kind ?? 'ok'}" role="status">${p.flash.ja}<span class="en">${p.flash.en}</span></p>` : ''}
${p.body}
</main>
</body>
</html>`;
}

/** The console's style sheet (served as /console.css: the CSP allows no inline style). */
export const CONSOLE_CSS = `
:root { --ink: #1b1f24; --muted: #5b6470; --line: #d0d7de; --accent: #0b5cad; --bad: #a40e26; --ok: #1a7f37; --bg: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font-family: "Noto Sans CJK JP", "Hiragino Sans", "Yu Gothic", sans-serif; color: var(--ink); background: #fff; line-height: 1.5; }
.en { display: block; font-size: 0.78em; color: var(--muted); font-weight: normal; }
h1 .en, .brand .en { display: inline; margin-left: 0.6em; }
header.top { display: flex; justify-content: space-between; align-items: center; padding: 0.6rem 1.2rem; background: #0b2a4a; color: #fff; }
header.top .en { color: #c8d6e5; }
.brand { font-weight: bold; }
.who .role { margin-left: 0.5em; padding: 0.1em 0.5em; border-radius: 3px; background: #24496f; font-size: 0.85em; }
nav.main { background: var(--bg); border-bottom: 1px solid var(--line); }
nav.main ul { list-style: none; margin: 0; padding: 0 1rem; display: flex; flex-wrap: wrap; gap: 0.2rem; }
nav.main a { display: block; padding: 0.45rem 0.8rem; color: var(--accent); text-decoration: none; }
nav.main a[aria-current="page"] { border-bottom: 3px solid var(--accent); font-weight: bold; }
main { padding: 1rem 1.2rem 2rem; max-width: 72rem; }
h1 { font-size: 1.35rem; margin: 0.3rem 0 1rem; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 0.5rem; }
table { border-collapse: collapse; width: 100%; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid var(--line); padding: 0.35rem 0.5rem; text-align: left; vertical-align: top; }
th { background: var(--bg); font-weight: 600; }
td.mono, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 0.9em; word-break: break-all; }
form.inline { display: inline; margin: 0; }
form.panel, .panel { border: 1px solid var(--line); border-radius: 4px; padding: 0.8rem 1rem; margin: 0.8rem 0; background: #fff; }
label { display: inline-block; margin: 0.2rem 1rem 0.2rem 0; }
label .en { display: inline; margin-left: 0.3em; }
input[type="text"], input[type="search"], input[type="number"], select { font: inherit; padding: 0.25rem 0.4rem; border: 1px solid #8c959f; border-radius: 3px; }
button { font: inherit; padding: 0.25rem 0.9rem; border: 1px solid var(--accent); background: var(--accent); color: #fff; border-radius: 3px; cursor: pointer; }
button .en { display: inline; color: #dbe7f3; margin-left: 0.3em; }
button.danger { background: var(--bad); border-color: var(--bad); }
button.quiet { background: #fff; color: var(--accent); }
button.quiet .en { color: var(--muted); }
.flash { padding: 0.5rem 0.8rem; border-radius: 4px; border: 1px solid var(--ok); background: #dafbe1; }
.flash.error { border-color: var(--bad); background: #ffebe9; }
.status-active, .status-issued { color: var(--ok); font-weight: 600; }
.status-suspended, .status-revoked, .status-locked { color: var(--bad); font-weight: 600; }
.muted { color: var(--muted); }
.nowrap, td.action, th.action { white-space: nowrap; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 1rem; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
nav.tabs ul { list-style: none; margin: 0 0 0.8rem; padding: 0; display: flex; gap: 0.3rem; border-bottom: 1px solid var(--line); }
nav.tabs a { display: block; padding: 0.3rem 0.9rem; border: 1px solid var(--line); border-bottom: none; border-radius: 4px 4px 0 0; color: var(--accent); text-decoration: none; }
nav.tabs a .en { display: inline; margin-left: 0.3em; }
nav.tabs a[aria-current="page"] { background: var(--accent); color: #fff; font-weight: bold; }
nav.tabs a[aria-current="page"] .en { color: #dbe7f3; }
@media print {
  header.top { background: none; color: #000; border-bottom: 2px solid #000; }
  header.top .en, .who .role { color: #000; background: none; }
  nav.main, form, button, .no-print { display: none !important; }
  main { max-width: none; padding: 0; }
  a { color: #000; text-decoration: none; }
  table { page-break-inside: auto; } tr { page-break-inside: avoid; }
}
`;
