import type { CampaignResult } from '../ca/index.js';

/** A campaign's letters and mail-merge CSV, held for the operator who ran it. */
export interface HeldCampaign {
  result: CampaignResult;
  /** The SHA-256 fingerprint of the operator certificate that ran it: the only one that may download. */
  owner: string;
  /** Absent when the campaign made no notice. */
  letters?: { body: Buffer; type: string; file: string };
  csv?: { body: Buffer; file: string };
  heldUntil: number;
}

/**
 * The files of recent campaigns, in memory only (never on disk): they carry
 * every reference ID. Each is handed only to the certificate that ran the
 * campaign, for `ttlMs` (default 30 minutes), and at most `max` campaigns
 * (default 20) are held: the oldest goes first. A restart forgets them
 * (revoke that campaign's notices and run it again).
 */
export class CampaignFiles {
  readonly #held = new Map<string, HeldCampaign>();
  constructor(private readonly o: { ttlMs?: number; max?: number; now?: () => number } = {}) {}

  get ttlMs(): number {
    return this.o.ttlMs ?? 30 * 60_000;
  }

  #sweep(): void {
    const now = (this.o.now ?? Date.now)();
    for (const [id, h] of this.#held) if (h.heldUntil <= now) this.#held.delete(id);
    while (this.#held.size > (this.o.max ?? 20)) this.#held.delete(this.#held.keys().next().value!);
  }

  put(h: Omit<HeldCampaign, 'heldUntil'>): HeldCampaign {
    const held = { ...h, heldUntil: (this.o.now ?? Date.now)() + this.ttlMs };
    this.#held.set(h.result.id, held);
    this.#sweep();
    return held;
  }

  /** The campaign, if it is still held and `owner` ran it; otherwise undefined (another's campaign looks like none). */
  get(id: string, owner: string): HeldCampaign | undefined {
    this.#sweep();
    const h = this.#held.get(id);
    return h && h.owner === owner ? h : undefined;
  }
}
