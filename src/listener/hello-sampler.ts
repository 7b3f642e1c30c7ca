/**
 * Which new connections hold their ClientHello for observation
 * (hello-peek.ts) and which go straight to TLS.
 *
 * Holding a hello is not free: the first record is read by JavaScript
 * (a stream read, a `data` event, a pause and an unshift) before TLS takes
 * the socket, where a socket handed to TLS at once is read by OpenSSL alone.
 * Measured on the gateway bench (full mutual-TLS handshakes + one GET, this
 * sampler against holding every hello, in the same rounds): TLS 1.2 +3 to
 * +17 % handshakes per CPU-second by round, TLS 1.3 −8 to +12 % (README).
 *
 * What a hello tells (the versions, suites and groups a client offers) is
 * needed once per client, not on every reconnection of a healthy one. So:
 *
 * - an address is held on every connection until `streak` handshakes from it
 *   in a row have completed; then one connection in `every` is held (the
 *   groups of a new observation row are filled from the next held hello);
 * - a handshake refused or failed from an address forgets that address: its
 *   next connections are held again, every one, until its streak is back.
 *   A failing client behind the same address (NAT) as healthy ones is
 *   therefore observed from its next attempt on at the latest;
 * - at most `maxAddresses` addresses are remembered; past that all are
 *   forgotten at once. Forgetting only ever means holding more, so a flood of
 *   addresses costs what holding every hello costs, never less observation.
 */
export interface HelloSamplingOptions {
  /** Completed handshakes in a row after which an address's hellos are sampled (default 16). */
  streak?: number;
  /** Past the streak, one connection in this many is held (default 64). */
  every?: number;
  /** Addresses remembered (default 10,000). */
  maxAddresses?: number;
}

export class HelloSampler {
  readonly #streak: number;
  readonly #every: number;
  readonly #max: number;
  /** Completed handshakes in a row, by address. */
  readonly #completed = new Map<string, number>();
  /** Connections held and not held (for status and tests). */
  readonly counts = { held: 0, passed: 0 };

  constructor(o: HelloSamplingOptions = {}) {
    this.#streak = positive(o.streak ?? 16, 'streak');
    this.#every = positive(o.every ?? 64, 'every');
    this.#max = positive(o.maxAddresses ?? 10_000, 'maxAddresses');
  }

  /** Asked once per accepted connection: hold its ClientHello? */
  hold(address: string): boolean {
    const n = this.#completed.get(address) ?? 0;
    const held = n < this.#streak || (n - this.#streak) % this.#every === 0;
    if (held) this.counts.held++;
    else this.counts.passed++;
    return held;
  }

  /** A handshake from `address` completed. */
  completed(address: string): void {
    const n = this.#completed.get(address);
    if (n === undefined && this.#completed.size >= this.#max) this.#completed.clear();
    this.#completed.set(address, (n ?? 0) + 1);
  }

  /** A handshake from `address` was refused, failed or timed out: hold its next ones. */
  failed(address: string): void {
    this.#completed.delete(address);
  }
}

function positive(n: number, name: string): number {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`hello sampling: ${name} must be a positive integer (got ${n})`);
  return n;
}
