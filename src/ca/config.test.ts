import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DEFAULT_CONFIG, loadConfig, parseConfig } from './config.js';
import { SekishoError } from '../errors/index.js';

test('the shipped example config and the defaults load', () => {
  const example = fileURLToPath(new URL('../../../docs/examples/config.json', import.meta.url));
  const c = loadConfig(example);
  assert.equal(c.organization, '北海道地域医療連携ネットワーク');
  assert.deepEqual(c, parseConfig(JSON.parse(readFileSync(example, 'utf8'))));
  assert.deepEqual(parseConfig(DEFAULT_CONFIG), DEFAULT_CONFIG);
});

test('a letter allows three downloads unless the config says otherwise; 1 makes it single-use', () => {
  assert.equal(parseConfig(base).notices.maxDownloads, 3);
  assert.equal(parseConfig({ ...base, notices: { maxDownloads: 1 } }).notices.maxDownloads, 1);
});

const base = { version: 1, organization: 'x', keyType: 'ecdsa-p256' };
/** Numbered bad configs: each is refused with CONFIG_INVALID naming the field. */
const BAD: [number, unknown, RegExp][] = [
  [1, { ...base, colour: 'red' }, /config\.colour: unknown setting/],
  [2, { ...base, version: 2 }, /config\.version: must be 1/],
  [3, { ...base, keyType: 'rsa-1024' }, /config\.keyType/],
  [4, { organization: 'x', keyType: 'ecdsa-p256' }, /config\.version: is required/],
  [5, { ...base, urls: { crl: 'ftp://x' } }, /config\.urls\.crl/],
  [6, { ...base, urls: { portal: 'https://x', extra: 'https://y' } }, /config\.urls\.extra: unknown setting/],
  [7, { ...base, validityDays: { facility: 731, device: 730, server: 397 } }, /config\.validityDays\.facility: must be a whole number from 1 to 730/],
  [8, { ...base, validityDays: { facility: 730, device: 730 } }, /config\.validityDays\.server: is required/],
  [9, { ...base, crlValidityHours: 0 }, /config\.crlValidityHours/],
  [10, { ...base, pkcs12: { minPasswordLength: 2, iterations: 2048 } }, /config\.pkcs12\.minPasswordLength/],
  [11, { ...base, pkcs12: { minPasswordLength: 8, iterations: 50_000_000 } }, /config\.pkcs12\.iterations/],
  [12, { ...base, database: 'postgres://u:secret@db/x' }, /config\.database: must be a postgres:\/\/ URL without a password/],
  [13, { ...base, database: 'postgres://u@db/x?password=secret' }, /config\.database/],
  [14, { ...base, organization: '' }, /config\.organization: must be a non-empty string/],
  [15, [], /config: must be an object/],
  [16, { ...base, renewal: { windowPercent: 0 } }, /config\.renewal\.windowPercent: must be a whole number from 1 to 100/],
  [17, { ...base, renewal: { overlapHours: -1 } }, /config\.renewal\.overlapHours/],
  [18, { ...base, renewal: { maxPerFacilityPerDay: 0 } }, /config\.renewal\.maxPerFacilityPerDay/],
  [19, { ...base, renewal: { every: 1 } }, /config\.renewal\.every: unknown setting/],
  // Regression: revocation pointers over https:// are not fetched by NSS (Firefox), which then accepts a revoked certificate.
  [20, { ...base, urls: { crl: 'https://pki.example.jp/ca.crl' } }, /config\.urls\.crl: .* must be a plain http:\/\/ URL/],
  [21, { ...base, urls: { ocsp: 'https://pki.example.jp/ocsp' } }, /config\.urls\.ocsp: .* plain http:\/\//],
  [22, { ...base, urls: { revocation: 'https://pki.example.jp' } }, /config\.urls\.revocation: .* plain http:\/\//],
  [23, { ...base, urls: { revocation: 'http://pki.example.jp/?x=1' } }, /config\.urls\.revocation/],
  [24, { ...base, audit: { checkpointSeconds: 0 } }, /config\.audit\.checkpointSeconds: must be a whole number from 1 to 86400/],
  [25, { ...base, audit: { checkpointSeconds: 1.5 } }, /config\.audit\.checkpointSeconds/],
  [26, { ...base, audit: { checkpointEvery: 300 } }, /config\.audit\.checkpointEvery: unknown setting/],
  [27, { ...base, audit: 300 }, /config\.audit: must be an object/],
  [28, { ...base, notices: { maxDownloads: 0 } }, /config\.notices\.maxDownloads: must be a whole number from 1 to 10/],
  [29, { ...base, notices: { maxDownloads: 11 } }, /config\.notices\.maxDownloads/],
  [30, { ...base, notices: { redownloads: 3 } }, /config\.notices\.redownloads: unknown setting/],
];
for (const [n, value, message] of BAD) {
  test(`bad config #${n} is refused and names its field`, () => {
    assert.throws(
      () => parseConfig(value),
      (e: unknown) => e instanceof SekishoError && e.code === 'CONFIG_INVALID' && message.test(e.message) && !/secret/.test(e.message),
    );
  });
}
