import type { Database, FacilityStatus } from '../store/index.js';
import { repositories } from '../store/index.js';

/**
 * The facility registry as the gateway follows it: status by number, loaded
 * once and then followed every second ("changed since", with an overlap), so
 * a suspension takes effect on new and live connections within seconds.
 */
export interface FacilityDirectory {
  start(): Promise<void>;
  /** undefined: not registered. */
  lookup(number: string): { status: FacilityStatus; name: string } | undefined;
  /** Called with facility numbers that were just suspended. */
  onSuspended(listener: (numbers: readonly string[]) => void): void;
  /** When the registry was last read successfully. */
  refreshedAt(): Date | undefined;
  close(): void;
}

export class StoreFacilityDirectory implements FacilityDirectory {
  #facilities = new Map<string, { status: FacilityStatus; name: string }>();
  #listeners: ((numbers: readonly string[]) => void)[] = [];
  #since = '';
  #timer: NodeJS.Timeout | undefined;
  #refreshedAt: Date | undefined;

  constructor(
    private readonly db: Database,
    private readonly intervalMs = 1000,
  ) {}

  async start(): Promise<void> {
    await this.#refresh();
    const tick = async () => {
      await this.#refresh().catch(() => undefined);
      if (this.#timer) this.#timer = setTimeout(tick, this.intervalMs).unref();
    };
    this.#timer = setTimeout(tick, this.intervalMs).unref();
  }

  async #refresh(): Promise<void> {
    const started = Date.now();
    const repo = repositories(this.db).facilities;
    const rows = this.#since ? await repo.changedSince(this.#since) : await repo.list();
    const suspended: string[] = [];
    for (const f of rows) {
      const before = this.#facilities.get(f.number);
      if (f.status === 'suspended' && before && before.status !== 'suspended') suspended.push(f.number);
      this.#facilities.set(f.number, { status: f.status, name: f.name });
    }
    this.#since = new Date(started - 30_000).toISOString();
    this.#refreshedAt = new Date();
    if (suspended.length) for (const l of this.#listeners) l(suspended);
  }

  lookup(number: string) {
    return this.#facilities.get(number);
  }

  onSuspended(listener: (numbers: readonly string[]) => void): void {
    this.#listeners.push(listener);
  }

  refreshedAt(): Date | undefined {
    return this.#refreshedAt;
  }

  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
