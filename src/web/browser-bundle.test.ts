/**
 * The build's gates on browser code (scripts/bundle-browser.mjs,
 * tsconfig.browser.json), checked on probe files outside the tree:
 * - esbuild refuses a Node built-in anywhere in the bundle, naming the
 *   module that imported it: the server's pkcs12.ts (node:crypto) pulled in
 *   by mistake, or a bare `buffer`; the pure modules the page uses bundle;
 * - the browser type-check (DOM library, no Node types) fails on a type
 *   error and on a module that needs Node's types.
 * Defect guarded: a Node-only module or a type error slipping into the page's
 * script, found only when a clinic's browser runs it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { runAsync } from '../testing/peers.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
type Bundle = (o: { root: string; entry: string; outfile: string; logLevel?: string }) => Promise<unknown>;
const bundler = async () => (await import(pathToFileURL(join(ROOT, 'scripts/bundle-browser.mjs')).href)) as { bundleBrowser: Bundle };

function probe(name: string, text: string): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'sekisho-probe-'));
  writeFileSync(join(dir, name), text);
  return { dir, file: join(dir, name) };
}

test('the browser bundle takes the pure modules and refuses a Node built-in, naming who imported it', async () => {
  const { bundleBrowser } = await bundler();
  const src = (p: string) => JSON.stringify(join(ROOT, 'src', p));
  const good = probe('good.ts', `import { noticeIdProblem } from ${src('ca/notice-id.ts')};\nimport { zipStore } from ${src('web/zip.ts')};\nimport { assemblePkcs12 } from ${src('pki/pkcs12-core.ts')};\nimport { buildCsrWith } from ${src('pki/csr-core.ts')};\nexport { noticeIdProblem, zipStore, assemblePkcs12, buildCsrWith };\n`);
  await bundleBrowser({ root: ROOT, entry: good.file, outfile: join(good.dir, 'out.js'), logLevel: 'silent' });
  assert.doesNotMatch(readFileSync(join(good.dir, 'out.js'), 'utf8'), /from ["']node:|require\(["']node:/);

  const server = probe('server.ts', `import { buildPkcs12 } from ${src('pki/pkcs12.ts')};\nexport { buildPkcs12 };\n`);
  await assert.rejects(bundleBrowser({ root: ROOT, entry: server.file, outfile: join(server.dir, 'out.js'), logLevel: 'silent' }), (e: Error) => {
    assert.match(e.message, /Node built-in "node:crypto" \(imported by .*pkcs12\.ts\)/);
    return true;
  });
  const bare = probe('bare.ts', `import { Buffer } from 'buffer';\nexport const b = Buffer.alloc(1);\n`);
  await assert.rejects(bundleBrowser({ root: ROOT, entry: bare.file, outfile: join(bare.dir, 'out.js'), logLevel: 'silent' }), /Node built-in "buffer"/);
});

test('the browser type-check fails on a type error and on a module that needs Node types', async () => {
  const p = probe('probe.ts', `import { noticeIdProblem } from ${JSON.stringify(join(ROOT, 'src/ca/notice-id.js'))};\nimport { readPkcs12 } from ${JSON.stringify(join(ROOT, 'src/pki/pkcs12.js'))};\nexport const n: number = noticeIdProblem('request', 'x');\nexport { readPkcs12 };\n`);
  writeFileSync(join(p.dir, 'package.json'), JSON.stringify({ type: 'module' }));
  writeFileSync(join(p.dir, 'tsconfig.json'), JSON.stringify({ extends: join(ROOT, 'tsconfig.browser.json'), compilerOptions: { rootDir: '/' }, include: ['probe.ts'] }));
  const r = await runAsync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(p.dir, 'tsconfig.json')], { timeoutMs: 180_000 });
  assert.notEqual(r.status, 0);
  assert.match(r.stdout, /probe\.ts\(3,\d+\): error TS2322/, r.stdout);
  assert.match(r.stdout, /pkcs12\.ts\(\d+,\d+\): error TS\d+: .*(node:crypto|Buffer|NodeJS)/, r.stdout);
});
