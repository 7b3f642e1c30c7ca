/**
 * CSV a spreadsheet opens as it is (RFC 4180): UTF-8 with a byte order mark
 * (Excel otherwise reads Japanese as Shift_JIS), CRLF line ends, every field
 * quoted when it holds a comma, quote, CR or LF. A cell that would start a
 * formula (= + - @, or a tab or CR before one) is prefixed with an apostrophe
 * (OWASP "CSV injection"), so a path or certificate subject chosen by a
 * client is shown, never evaluated.
 */
export type CsvCell = string | number | null | undefined;

const FORMULA = /^[=+\-@\t\r]/;

export function csvCell(v: CsvCell): string {
  if (v === null || v === undefined) return '';
  let s = String(v);
  // Numbers we wrote are numbers (a negative one stays a number); text from outside is neutralized.
  if (typeof v === 'string' && FORMULA.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvDocument(header: readonly string[], rows: readonly (readonly CsvCell[])[]): string {
  return '\uFEFF' + [header, ...rows].map((r) => r.map(csvCell).join(',')).join('\r\n') + '\r\n';
}
