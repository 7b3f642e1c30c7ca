import { CertificateAuthority, resolveHome } from '../ca/index.js';
import type { CommandContext } from './command.js';
import { caPassphrase } from './secrets.js';

/** Opens the CA of --home/--db for one command (unlocking its key when asked) and closes it after. */
export async function withAuthority<T>(ctx: CommandContext, unlock: boolean, fn: (ca: CertificateAuthority) => Promise<T>): Promise<T> {
  const home = resolveHome(ctx.values.home as string | undefined, ctx.env);
  const db = (ctx.values.db as string | undefined) ?? ctx.env.SEKISHO_DB;
  const ca = await CertificateAuthority.open({ home, ...(db ? { db } : {}) });
  try {
    if (unlock) await ca.unlock(await caPassphrase(ctx.env, ctx.isTTY));
    return await fn(ca);
  } finally {
    await ca.close();
  }
}

/** Who is acting, for the audit trail: $SEKISHO_ACTOR or the OS user. */
export function actor(env: NodeJS.ProcessEnv): string {
  return env.SEKISHO_ACTOR ?? `operator:${env.USER ?? env.LOGNAME ?? 'unknown'}`;
}
