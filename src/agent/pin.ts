/**
 * Where the token PIN comes from: the environment, a file only the agent's
 * user can read, or a prompt on the terminal. Never argv (other local users
 * see a process's arguments), never the configuration file.
 */
import { readFileSync, statSync } from 'node:fs';
import { agentErrors } from './messages.js';
import type { PinSource } from './config.js';

export interface PinContext {
  env: NodeJS.ProcessEnv;
  isTTY: boolean;
  prompt?: (question: string) => Promise<string>;
}

export async function readPin(source: PinSource, ctx: PinContext): Promise<string> {
  if (source === 'prompt') {
    if (!ctx.isTTY || !ctx.prompt) throw agentErrors.pinMissing('credential.pin is "prompt" but the agent has no terminal; use { env: NAME } or { file: PATH } for a service');
    const p = await ctx.prompt('token PIN: ');
    if (!p) throw agentErrors.pinMissing('nothing was typed');
    return p;
  }
  if ('env' in source) {
    const p = ctx.env[source.env];
    if (!p) throw agentErrors.pinMissing(`set the environment variable ${source.env}`);
    return p;
  }
  let st;
  try {
    st = statSync(source.file);
  } catch (e) {
    throw agentErrors.pinMissing(`the PIN file ${source.file} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if ((st.mode & 0o077) !== 0) throw agentErrors.pinFileOpen(source.file, st.mode);
  const p = readFileSync(source.file, 'utf8').trim();
  if (!p) throw agentErrors.pinMissing(`the PIN file ${source.file} is empty`);
  return p;
}
