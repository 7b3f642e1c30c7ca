import type { FacilityStatus } from '../store/index.js';
import type { StoreStatusFeed } from './status-feed.js';

/**
 * The facility registry as the gateway follows it: status by number, loaded
 * once and then followed by the store's change sequence (status-feed.ts), so
 * a suspension takes effect on new and live connections within seconds,
 * whatever the clock of the host that suspended it.
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

/** The facility registry from the CA's store, through the status feed the revocation source shares. */
export class StoreFacilityDirectory implements FacilityDirectory {
  constructor(private readonly feed: StoreStatusFeed) {}

  start(): Promise<void> {
    return this.feed.start();
  }

  lookup(number: string) {
    return this.feed.facility(number);
  }

  onSuspended(listener: (numbers: readonly string[]) => void): void {
    this.feed.onSuspended(listener);
  }

  refreshedAt(): Date | undefined {
    return this.feed.refreshedAt;
  }

  close(): void {
    this.feed.close();
  }
}
