import { CertificateAuthority, resolveHome } from '../ca/index.js';
import type { CommandContext } from './command.js';
import { caPassphrase, prompt } from './secrets.js';
import { isSekishoError, unauthorized } from '../errors/index.js';

/** Opens the CA of --home/--db for one command (unlocking its key when asked) and closes it after. */
export async function withAuthority<T>(ctx: CommandContext, unlock: boolean, fn: (ca: CertificateAuthority) => Promise<T>): Promise<T> {
  const home = resolveHome(ctx.values.home as string | undefined, ctx.env);
  const db = (ctx.values.db as string | undefined) ?? ctx.env.SEKISHO_DB;
  const ca = await CertificateAuthority.open({ home, ...(db ? { db } : {}) });
  try {
    // An issuing key in a token opens with the token's user PIN; a key file with the CA passphrase.
    if (unlock) await (ca.issuingKeyRef() ? ca.unlockWithToken(await tokenPin(ctx)) : ca.unlock(await caPassphrase(ctx.env, ctx.isTTY)));
    const before = unlock ? undefined : await ca.audit.headSeq();
    try {
      return await fn(ca);
    } finally {
      // A command that holds the audit key signs the events it appended (a refused command's too).
      if (unlock) await signCheckpoint(ctx, ca);
      // One that needs no key (cert revoke, facility …) signs them when the secret is in the environment; never prompts.
      else if (before !== undefined && (await ca.audit.headSeq()) !== before) await signCheckpointIfSecretGiven(ctx, ca);
    }
  } finally {
    await ca.close();
  }
}

/** Signs a checkpoint of the audit trail; a failure is a warning, the command's own work is done and committed. */
async function signCheckpoint(ctx: CommandContext, ca: CertificateAuthority): Promise<void> {
  try {
    await ca.checkpoint();
  } catch (e) {
    const code = isSekishoError(e) ? e.code : 'INTERNAL';
    ctx.err(`sekisho: warning: AUDIT_CHECKPOINT_FAILED: the audit trail was not checkpointed (${code}: ${(e as Error).message}); run "sekisho audit checkpoint"`);
  }
}

async function signCheckpointIfSecretGiven(ctx: CommandContext, ca: CertificateAuthority): Promise<void> {
  const secret = ca.issuingKeyRef() ? ctx.env.SEKISHO_PIN : ctx.env.SEKISHO_PASSPHRASE;
  if (!secret) return;
  try {
    await ca.unlockAuditKey(secret);
  } catch (e) {
    ctx.err(`sekisho: warning: AUDIT_CHECKPOINT_FAILED: the audit key could not be opened (${isSekishoError(e) ? e.code : 'INTERNAL'}); run "sekisho audit checkpoint"`);
    return;
  }
  await signCheckpoint(ctx, ca);
}

/** Who is acting, for the audit trail: $SEKISHO_ACTOR or the OS user. */
export function actor(env: NodeJS.ProcessEnv): string {
  return env.SEKISHO_ACTOR ?? `operator:${env.USER ?? env.LOGNAME ?? 'unknown'}`;
}

/** The user PIN of the token holding a CA key: $SEKISHO_PIN, else a prompt on a terminal; never argv. */
export async function tokenPin(ctx: CommandContext): Promise<string> {
  let p = ctx.env.SEKISHO_PIN;
  if (p === undefined && ctx.isTTY) p = await prompt('token PIN: ');
  if (!p) throw unauthorized('PIN_REQUIRED', 'the CA key is in a token: set SEKISHO_PIN to its user PIN (or run on a terminal to be asked)');
  return p;
}
