import { existsSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { badRequest } from '../../errors/index.js';
import { bulkDeliver, ensurePrivateDir, parseFacilityCsv, type BulkProgress } from '../../ca/index.js';
import { parseKeyType } from '../../pki/index.js';
import { HOME_OPTIONS, JSON_OPTION, required, type Command } from '../command.js';
import { actor, withAuthority } from '../authority.js';
import { caPassphrase } from '../secrets.js';

function bar(p: BulkProgress): string {
  const width = 30;
  const filled = Math.round((p.done / Math.max(1, p.total)) * width);
  return `\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.done}/${p.total}  issued ${p.issued}  skipped ${p.skipped}  errors ${p.errors}`;
}

export const certBulkCommand: Command = {
  path: ['cert', 'bulk'],
  summary: 'issue PKCS#12 files for every facility in a CSV (resumable delivery package)',
  options: {
    ...HOME_OPTIONS,
    csv: { type: 'string', description: 'facilities: number,name[,address,contact] (header optional)', valueName: 'FILE' },
    out: { type: 'string', description: 'delivery directory (created; rerun with the same one to resume)', valueName: 'DIR' },
    key: { type: 'string', description: 'key type (default rsa-2048, which every importer reads)', valueName: 'TYPE' },
    concurrency: { type: 'string', description: 'rows in flight (default 4)', valueName: 'N' },
    ...JSON_OPTION,
  },
  validators: [required('csv', 'out')],
  run: async (ctx) => {
    const v = ctx.values;
    const keyType = parseKeyType((v.key as string | undefined) ?? 'rsa-2048');
    const concurrency = v.concurrency === undefined ? 4 : Number(v.concurrency);
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw badRequest('CONCURRENCY_INVALID', '--concurrency must be 1–64');
    let bytes: Buffer;
    try {
      bytes = readFileSync(v.csv as string);
    } catch {
      throw badRequest('CSV_UNREADABLE', `cannot read the CSV file ${v.csv as string}`);
    }
    const rows = parseFacilityCsv(decodeCsv(bytes, v.csv as string));
    const outDir = resolve(v.out as string);
    // A directory given is used as it is (the files written in it are 0600); only one made here is made private.
    if (existsSync(outDir) && !statSync(outDir).isDirectory()) throw badRequest('OUT_NOT_A_DIRECTORY', `--out ${outDir} is not a directory`);
    const passphrase = await caPassphrase(ctx.env, ctx.isTTY);
    return withAuthority({ ...ctx, env: { ...ctx.env, SEKISHO_PASSPHRASE: passphrase } }, true, async (ca) => {
      if (!existsSync(outDir)) ensurePrivateDir(outDir);
      const showBar = process.stderr.isTTY && !v.json;
      const results = await bulkDeliver({
        ca,
        rows,
        outDir,
        keyType,
        passphrase,
        actor: actor(ctx.env),
        concurrency,
        ...(showBar ? { onProgress: (p: BulkProgress) => process.stderr.write(bar(p)) } : {}),
      });
      if (showBar) process.stderr.write('\n');
      const errors = results.filter((r) => r.status === 'error');
      const count = (s: string) => results.filter((r) => r.status === s).length;
      if (v.json) ctx.json({ outDir, issued: count('issued'), resumed: count('resumed'), skipped: count('skipped'), errors: errors.length, rows: results });
      else {
        for (const e of errors) ctx.err(`row ${e.row} (${e.number}): ${e.code}: ${e.message}`);
        ctx.out(`${outDir}: issued ${count('issued')}, resumed ${count('resumed')}, already delivered ${count('skipped')}, errors ${errors.length}`);
      }
      return errors.length ? 1 : 0;
    });
  },
};

/**
 * The CSV as text: UTF-8 (with or without a BOM) only. Excel's "CSV (コンマ区切り)"
 * saves Shift_JIS, which read as UTF-8 registered and certified every
 * facility's name as replacement characters; it is refused, nothing done.
 */
function decodeCsv(bytes: Buffer, file: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw badRequest('CSV_ENCODING', `the CSV file ${file} is not UTF-8 (Excel's "CSV (コンマ区切り)" saves Shift_JIS): save it as "CSV UTF-8 (コンマ区切り)" and run again; nothing was done`, {
      ja: `CSV ファイル ${file} が UTF-8 ではありません（Excel の「CSV (コンマ区切り)」は Shift_JIS で保存されます）。「CSV UTF-8 (コンマ区切り)」で保存し直してから、もう一度実行してください。何も処理していません。`,
    });
  }
}
