#!/usr/bin/env node
// The runtime is checked before anything else loads: native modules built for
// the supported runtime crash an older one, and an unsupported Node.js gets no
// security fixes.
const SUPPORTED_MAJOR = 24;
const major = Number(process.versions.node.split('.')[0]);
if (!(major >= SUPPORTED_MAJOR)) {
  process.stderr.write(
    `sekisho: RUNTIME_UNSUPPORTED: Node.js ${process.versions.node} is not supported; sekisho needs a maintained Node.js LTS (${SUPPORTED_MAJOR} or newer). ` +
      'Run it through npm (npx sekisho …, npm test), which uses the Node.js that npm install placed in node_modules, or install Node.js 24/26.\n',
  );
  process.exit(2);
}
const { runCli } = await import('./run.js');
const status = await runCli(process.argv.slice(2), {
  stdout: (s) => process.stdout.write(s.endsWith('\n') ? s : `${s}\n`),
  stderr: (s) => process.stderr.write(s.endsWith('\n') ? s : `${s}\n`),
  env: process.env,
  isTTY: Boolean(process.stdin.isTTY),
});
process.exitCode = status;
