// After tsc: makes the CLI entry executable (tsc keeps the shebang, not the
// mode), copies the policy data and the portal's static assets beside the
// compiled modules, and bundles the portal's browser code
// (src/web/browser/portal.ts, type-checked by tsconfig.browser.json) with
// esbuild into dist/src/web/assets/portal.js, where the portal serves it.
// A Node built-in reached from the browser code fails the build.
import { chmodSync, cpSync, existsSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = new URL('../', import.meta.url);
const bin = new URL('dist/src/cli/main.js', root);
if (existsSync(bin)) chmodSync(bin, 0o755);
cpSync(new URL('src/policy/data/', root), new URL('dist/src/policy/data/', root), { recursive: true });
cpSync(new URL('src/web/assets/', root), new URL('dist/src/web/assets/', root), { recursive: true });

const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
/** Refuses any import of a Node built-in (node:crypto, buffer, …) into the browser bundle, naming who imported it. */
const noNodeBuiltins = {
  name: 'no-node-builtins',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      const name = args.path.startsWith('node:') ? args.path : args.path.split('/')[0];
      if (args.kind !== 'entry-point' && (builtins.has(name) || args.path.startsWith('node:'))) {
        return { errors: [{ text: `the portal's browser code must not use the Node built-in "${args.path}" (imported by ${args.importer}); put what it needs in a pure module` }] };
      }
      return undefined;
    });
  },
};

try {
  await build({
    absWorkingDir: fileURLToPath(root),
    entryPoints: ['src/web/browser/portal.ts'],
    outfile: 'dist/src/web/assets/portal.js',
    tsconfig: 'tsconfig.browser.json',
    bundle: true,
    platform: 'browser',
    target: 'es2022',
    format: 'esm',
    legalComments: 'none',
    logLevel: 'warning',
    preserveSymlinks: true,
    plugins: [noNodeBuiltins],
  });
} catch {
  // esbuild has printed the errors
  process.exit(1);
}
