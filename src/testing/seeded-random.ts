/**
 * xorshift32 for fuzz tests: small, seeded, repeatable. `next(n)` is an
 * integer in [0, n); a failure reproduces from the seed it was run with.
 */
export function seededRandom(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n: number) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}
