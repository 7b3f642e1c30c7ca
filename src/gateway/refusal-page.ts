import { REFUSAL_ADVICE, type RefusalReason } from './refusal.js';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The page a clinic sees when its certificate is known but not accepted (HTTP mode), in Japanese and English. */
export function refusalPage(reason: RefusalReason, context: { facilityNumber?: string; facilityName?: string; serial?: string; contact?: string; selfCheckUrl?: string }): string {
  const advice = REFUSAL_ADVICE[reason];
  const who = [context.facilityName, context.facilityNumber].filter(Boolean).join(' ');
  return `<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>接続できません / Access refused</title>
<style>body{font-family:"Noto Sans CJK JP","Hiragino Sans",sans-serif;max-width:40em;margin:3em auto;padding:0 1em;line-height:1.7;color:#222}
h1{font-size:1.4em;border-bottom:2px solid #b00;padding-bottom:.3em}section{margin:1.5em 0}code{background:#f3f3f3;padding:.1em .3em}.en{color:#444}</style></head>
<body>
<h1>接続できません<br><span class="en">Access refused</span></h1>
<section lang="ja"><p>${esc(advice.ja)}</p></section>
<section lang="en" class="en"><p>${esc(advice.en)}</p></section>
<section><p>理由コード / Reason: <code>${esc(reason)}</code>${who ? `<br>医療機関 / Facility: ${esc(who)}` : ''}${context.serial ? `<br>証明書シリアル / Certificate serial: <code>${esc(context.serial)}</code>` : ''}</p>
${context.contact ? `<p>お問い合わせ先 / Contact: ${esc(context.contact)}</p>` : ''}</section>
${context.selfCheckUrl ? `<section id="self-check"><p>このパソコンの接続（TLS のバージョン、証明書、失効の有無、新しいポリシーで接続できるか）は接続診断ページで確認できます。<br><span class="en">The self-check page shows what this computer's connection uses (TLS version, certificate, revocation) and whether it will pass the coming policy:</span><br><a href="${esc(context.selfCheckUrl)}">${esc(context.selfCheckUrl)}</a></p></section>` : ''}
</body></html>
`;
}
