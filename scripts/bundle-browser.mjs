// Bundles browser code with esbuild the one way the build does it: browser
// platform, ES2022, ES module, and no Node built-in anywhere in the bundle
// (an import of node:crypto, buffer, … fails the build, naming the importer).
// Used by scripts/postbuild.mjs (the portal's script) and by
// src/web/browser-bundle.test.ts (that the refusal holds).
import { builtinModules } from 'node:module';
import { build } from 'esbuild';

const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/** Refuses any import of a Node built-in into the bundle. */
export const noNodeBuiltins = {
  name: 'no-node-builtins',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      const name = args.path.startsWith('node:') ? args.path : args.path.split('/')[0];
      if (args.kind !== 'entry-point' && builtins.has(name)) {
        return { errors: [{ text: `browser code must not use the Node built-in "${args.path}" (imported by ${args.importer}); put what it needs in a pure module` }] };
      }
      return undefined;
    });
  },
};

/** Bundles `entry` into `outfile` (paths relative to `root`); rejects with esbuild's errors. */
export function bundleBrowser({ root, entry, outfile, tsconfig = 'tsconfig.browser.json', logLevel = 'warning' }) {
  return build({
    absWorkingDir: root,
    entryPoints: [entry],
    outfile,
    tsconfig,
    bundle: true,
    platform: 'browser',
    target: 'es2022',
    format: 'esm',
    legalComments: 'none',
    preserveSymlinks: true,
    logLevel,
    plugins: [noNodeBuiltins],
  });
}
