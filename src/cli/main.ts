#!/usr/bin/env node
import { runCli } from './run.js';

const status = await runCli(process.argv.slice(2), {
  stdout: (s) => process.stdout.write(s.endsWith('\n') ? s : `${s}\n`),
  stderr: (s) => process.stderr.write(s.endsWith('\n') ? s : `${s}\n`),
  env: process.env,
  isTTY: Boolean(process.stdin.isTTY),
});
process.exitCode = status;
