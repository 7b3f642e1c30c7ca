import { malformed } from '../errors/index.js';

/**
 * RFC 4180 CSV: quoted fields with "" escapes, CRLF or LF, a UTF-8 BOM
 * tolerated. Returns rows of fields; throws on an unterminated quote.
 */
export function parseCsv(text: string): string[][] {
  const s = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let i = 0;
  let quoted = false;
  let line = 1;
  while (i < s.length) {
    const c = s[i]!;
    if (quoted) {
      if (c === '"') {
        if (s[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        continue;
      }
      if (c === '\n') line++;
      field += c;
      i++;
      continue;
    }
    if (c === '"' && field === '') {
      quoted = true;
      i++;
    } else if (c === ',') {
      row.push(field);
      field = '';
      i++;
    } else if (c === '\r' || c === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i += c === '\r' && s[i + 1] === '\n' ? 2 : 1;
      line++;
    } else {
      field += c;
      i++;
    }
  }
  if (quoted) throw malformed('CSV_MALFORMED', `the CSV has an unterminated quoted field (from line ${line})`);
  if (field !== '' || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows.filter((r) => r.some((f) => f.trim() !== ''));
}

export interface FacilityRow {
  /** 1-based row of the file (a header counts as row 1), for error reports. */
  row: number;
  number: string;
  name: string;
  address?: string;
  contact?: string;
}

const HEADER_ALIASES: Record<string, keyof Omit<FacilityRow, 'row'>> = {
  number: 'number', code: 'number', facility: 'number', '医療機関番号': 'number', '医療機関コード': 'number',
  name: 'name', '名称': 'name', '医療機関名': 'name', '施設名': 'name',
  address: 'address', '住所': 'address', '所在地': 'address',
  contact: 'contact', '連絡先': 'contact', '電話番号': 'contact',
};

/**
 * Reads the operator's facility list: columns number, name[, address, contact]
 * in that order, or any order under a header row (English or Japanese names).
 */
export function parseFacilityCsv(text: string): FacilityRow[] {
  const rows = parseCsv(text);
  if (rows.length === 0) throw malformed('CSV_EMPTY', 'the CSV holds no facilities');
  let columns: (keyof Omit<FacilityRow, 'row'> | undefined)[] = ['number', 'name', 'address', 'contact'];
  let first = 0;
  const head = rows[0]!;
  if (!/^\s*\d/.test(head[0] ?? '')) {
    columns = head.map((h) => HEADER_ALIASES[h.trim().toLowerCase()] ?? HEADER_ALIASES[h.trim()]);
    if (!columns.includes('number') || !columns.includes('name')) {
      throw malformed('CSV_HEADER', `the CSV header "${head.join(',')}" needs columns for the facility number and name (number,name[,address,contact])`);
    }
    first = 1;
  }
  return rows.slice(first).map((r, i) => {
    const out: FacilityRow = { row: first + i + 1, number: '', name: '' };
    columns.forEach((col, j) => {
      const v = (r[j] ?? '').trim();
      if (col && v) out[col] = v;
    });
    return out;
  });
}
