import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { checkSameOrigin, csrfGuard } from './csrf.js';
import { isSekishoError } from '../errors/index.js';

const FP_A = 'a'.repeat(64);
const FP_B = 'b'.repeat(64);
const refused = (f: () => void, code: string) => assert.throws(f, (e: unknown) => isSekishoError(e) && e.code === code && e.kind === 'forbidden');

describe('CSRF token bound to the certificate', () => {
  let now = 1_000_000;
  const secret = randomBytes(32);
  const guard = csrfGuard({ secret, now: () => now, maxAgeMs: 60_000 });

  test('a fresh token for this certificate passes', () => {
    guard.check(guard.token(FP_A), FP_A);
  });

  const cases: [string, () => string | undefined, string][] = [
    ['no token', () => undefined, FP_A],
    ["another certificate's token", () => guard.token(FP_B), FP_A],
    ['a token of another secret (a restarted server)', () => csrfGuard({ secret: randomBytes(32), now: () => now }).token(FP_A), FP_A],
    ['a token from the future', () => `${now + 5_000}.${guard.token(FP_A).split('.')[1]}`, FP_A],
    ['a token with its time changed', () => `${now - 1}.${guard.token(FP_A).split('.')[1]}`, FP_A],
    ['garbage', () => 'not-a-token', FP_A],
  ];
  for (const [name, make, fp] of cases) {
    test(`refused: ${name}`, () => refused(() => guard.check(make(), fp), 'CSRF_TOKEN_INVALID'));
  }

  test('refused: a token older than its lifetime', () => {
    const t = guard.token(FP_A);
    now += 60_001;
    refused(() => guard.check(t, FP_A), 'CSRF_TOKEN_INVALID');
  });

  test('a secret shorter than 32 bytes is refused at start', () => {
    assert.throws(() => csrfGuard({ secret: randomBytes(16) }));
  });
});

describe('same-origin check', () => {
  const host = 'localhost:8444';
  const ok: [string, { origin?: string; secFetchSite?: string }][] = [
    ['same-origin form', { origin: 'https://localhost:8444', secFetchSite: 'same-origin' }],
    ['a script without browser headers (curl)', {}],
    ['typed by the user', { secFetchSite: 'none' }],
  ];
  for (const [name, h] of ok) test(`passes: ${name}`, () => checkSameOrigin({ origin: h.origin, secFetchSite: h.secFetchSite, host }));
  const bad: [string, { origin?: string; secFetchSite?: string }][] = [
    ['cross-site', { origin: 'https://evil.example', secFetchSite: 'cross-site' }],
    ['same-site (a sibling host)', { origin: 'https://other.localhost:8444', secFetchSite: 'same-site' }],
    ['Origin: null (no-referrer, sandboxed frame)', { origin: 'null' }],
    ['another port', { origin: 'https://localhost:8443' }],
    ['plain http', { origin: 'http://localhost:8444' }],
  ];
  for (const [name, h] of bad) test(`refused: ${name}`, () => refused(() => checkSameOrigin({ origin: h.origin, secFetchSite: h.secFetchSite, host }), 'CROSS_SITE_REQUEST'));
});
