// After tsc: makes the CLI entry executable (tsc keeps the shebang, not the
// mode), copies the policy data and the portal's static assets beside the
// compiled modules, and bundles the portal's browser code
// (src/web/browser/portal.ts, type-checked by tsconfig.browser.json) with
// esbuild into dist/src/web/assets/portal.js, where the portal serves it
// (scripts/bundle-browser.mjs: a Node built-in reached from it fails the build).
import { chmodSync, cpSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { bundleBrowser } from './bundle-browser.mjs';

const root = new URL('../', import.meta.url);
const bin = new URL('dist/src/cli/main.js', root);
if (existsSync(bin)) chmodSync(bin, 0o755);
cpSync(new URL('src/policy/data/', root), new URL('dist/src/policy/data/', root), { recursive: true });
cpSync(new URL('src/web/assets/', root), new URL('dist/src/web/assets/', root), { recursive: true });

try {
  await bundleBrowser({ root: fileURLToPath(root), entry: 'src/web/browser/portal.ts', outfile: 'dist/src/web/assets/portal.js' });
} catch {
  // esbuild has printed the errors
  process.exit(1);
}
