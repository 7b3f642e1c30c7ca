/**
 * Text for XML 1.0 documents built by hand (the ATNA audit message).
 *
 * XML 1.0 §2.2 allows only #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] |
 * [#x10000-#x10FFFF]; anything else (C0 controls, lone surrogates, U+FFFE/FFFF)
 * cannot appear even as a character reference, so it is written as visible
 * text `\u{…}` instead: the document stays well-formed and the reader still
 * sees that something odd was there. Tab, line feed and carriage return are
 * written as character references in attributes (§3.3.3 would otherwise turn
 * them into spaces); C1 controls are written as references too, so no raw
 * control character reaches a log viewer.
 */

const MARKUP: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

function visible(cp: number): string {
  return `\\u{${cp.toString(16).toUpperCase().padStart(4, '0')}}`;
}

function allowedInXml(cp: number): boolean {
  return cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

function escape(s: string, attribute: boolean): string {
  let out = '';
  // for…of walks code points; a lone surrogate comes out as one unit (0xD800–0xDFFF).
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (!allowedInXml(cp)) out += visible(cp);
    else if (MARKUP[ch] !== undefined) out += MARKUP[ch];
    else if ((attribute && (cp === 0x9 || cp === 0xa || cp === 0xd)) || (cp >= 0x7f && cp <= 0x9f)) out += `&#x${cp.toString(16).toUpperCase()};`;
    else if (!attribute && cp === 0xd) out += '&#xD;'; // a raw CR in content becomes LF when parsed (§2.11)
    else out += ch;
  }
  return out;
}

/** An attribute value, for use between double quotes. */
export function xmlAttr(s: string): string {
  return escape(s, true);
}

/** Character data (element content). */
export function xmlText(s: string): string {
  return escape(s, false);
}

/**
 * At most `max` code points (never splitting a surrogate pair), with an
 * ellipsis when cut, so a long or hostile value cannot grow a message.
 */
export function clip(s: string, max: number): string {
  if (s.length <= max) return s;
  const cps = Array.from(s);
  return cps.length <= max ? s : cps.slice(0, Math.max(0, max - 1)).join('') + '…';
}

/** The UTF-8 bytes of `s`, at most `maxBytes`, cut on a character boundary. */
export function utf8Clipped(s: string, maxBytes: number): { bytes: Buffer; truncated: boolean } {
  const full = Buffer.from(s, 'utf8');
  if (full.length <= maxBytes) return { bytes: full, truncated: false };
  let end = maxBytes;
  // Step back over continuation bytes (10xxxxxx) so no character is split.
  while (end > 0 && (full[end]! & 0xc0) === 0x80) end--;
  return { bytes: full.subarray(0, end), truncated: true };
}
