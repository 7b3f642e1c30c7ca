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
// The servers (gateway, serve, up) run with a larger young generation: the
// short-lived objects of each connection and request then die there instead of
// being promoted and swept by the major collector. V8 takes its heap sizes
// only at start-up, so the process replaces itself with the flags (execve:
// same PID, same descriptors) unless it was given semi-space sizes already
// (node's options or NODE_OPTIONS). Where execve is missing it runs as it is.
const SERVER_COMMANDS = new Set(['gateway', 'serve', 'up']);
const YOUNG_GENERATION_FLAGS = ['--max-semi-space-size=32', '--min-semi-space-size=16'];
const sized = (flags: readonly string[]) => flags.some((f) => f.startsWith('--max-semi-space-size') || f.startsWith('--min-semi-space-size'));
if (SERVER_COMMANDS.has(process.argv[2] ?? '') && process.execve && !sized(process.execArgv) && !sized((process.env.NODE_OPTIONS ?? '').split(/\s+/))) {
  process.execve(process.execPath, [process.execPath, ...YOUNG_GENERATION_FLAGS, ...process.execArgv, ...process.argv.slice(1)], process.env);
}
const { runCli } = await import('./run.js');
const status = await runCli(process.argv.slice(2), {
  stdout: (s) => process.stdout.write(s.endsWith('\n') ? s : `${s}\n`),
  stderr: (s) => process.stderr.write(s.endsWith('\n') ? s : `${s}\n`),
  env: process.env,
  isTTY: Boolean(process.stdin.isTTY),
});
process.exitCode = status;
