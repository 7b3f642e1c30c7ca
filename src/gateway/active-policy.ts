import { EventEmitter } from 'node:events';
import { nextPolicyChange, policyOutlook, type PolicyOutlook, type PolicySchedule } from '../policy/index.js';

/** setTimeout holds at most 2^31−1 ms (about 24.8 days): a later change is reached by re-arming. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * The gateway's policy at run time, from a schedule: what is in force now,
 * what comes next, and a 'change' event at each boundary of the schedule
 * (a phase starts, an exception ends), without a restart. The timer is armed
 * to the next change by the injected clock and re-armed after each one; a
 * clock that jumps (tests, a stepped host clock) is met by `check()`, which
 * re-reads the state and emits when it differs.
 */
export class ActivePolicy {
  readonly #events = new EventEmitter();
  readonly #clock: () => Date;
  #outlook: PolicyOutlook;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(
    readonly schedule: PolicySchedule,
    clock: () => Date = () => new Date(),
  ) {
    this.#clock = clock;
    this.#outlook = policyOutlook(schedule, clock());
    this.#arm();
  }

  /** What is in force now and what comes next (as of the last change or check). */
  outlook(): PolicyOutlook {
    return this.#outlook;
  }

  /** Called with the new outlook and the previous one at each change. */
  on(event: 'change', listener: (outlook: PolicyOutlook, previous: PolicyOutlook) => void): this {
    this.#events.on(event, listener);
    return this;
  }

  off(event: 'change', listener: (outlook: PolicyOutlook, previous: PolicyOutlook) => void): this {
    this.#events.off(event, listener);
    return this;
  }

  /** Re-reads the schedule at the clock's now; emits 'change' when the state differs. Returns whether it did. */
  check(): boolean {
    if (this.#closed) return false;
    const previous = this.#outlook;
    const next = policyOutlook(this.schedule, this.#clock());
    this.#outlook = next;
    this.#arm();
    if (sameState(previous, next)) return false;
    this.#events.emit('change', next, previous);
    return true;
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#events.removeAllListeners();
  }

  #arm(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#closed) return;
    const now = this.#clock();
    const at = nextPolicyChange(this.schedule, now);
    if (!at) return;
    // A few ms late rather than early: the state is read at the clock's now, which must be past the boundary.
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, at.getTime() - now.getTime()) + 5);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.check();
    }, delay);
    this.#timer.unref();
  }
}

/** The identity of a policy state: its profile, its start and the exceptions in force. */
export function stateKey(o: PolicyOutlook['inForce']): string {
  return JSON.stringify([o.profile.name, o.since?.getTime() ?? null, o.clientPolicy]);
}

function sameState(a: PolicyOutlook, b: PolicyOutlook): boolean {
  return stateKey(a.inForce) === stateKey(b.inForce);
}
