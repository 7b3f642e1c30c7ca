// After tsc: makes the CLI entry executable (tsc keeps the shebang, not the
// mode) and copies the policy data beside the compiled policy module.
import { chmodSync, cpSync, existsSync } from 'node:fs';
const bin = new URL('../dist/src/cli/main.js', import.meta.url);
if (existsSync(bin)) chmodSync(bin, 0o755);
cpSync(new URL('../src/policy/data/', import.meta.url), new URL('../dist/src/policy/data/', import.meta.url), { recursive: true });
cpSync(new URL('../src/web/assets/', import.meta.url), new URL('../dist/src/web/assets/', import.meta.url), { recursive: true });
