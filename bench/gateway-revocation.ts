/**
 * Child process of bench/gateway.ts (run with --expose-gc): loads one CRL
 * through the gateway's CrlRevocationSource exactly as `sekisho gateway --crl`
 * does (read, parse, verify the signature against the trusted CA, build the
 * serial set) and prints one JSON line: seconds, entries, and the heap / RSS
 * growth after a full GC on both sides.
 *
 *   node --expose-gc dist/bench/gateway-revocation.js CRL_FILE CA_PEM [SERIAL_HEX]
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CrlRevocationSource } from '../src/gateway/index.js';

const MiB = 2 ** 20;

async function main(): Promise<void> {
  const [crl, caPem, probe] = process.argv.slice(2);
  if (!crl || !caPem) throw new Error('usage: gateway-revocation.js CRL_FILE CA_PEM [SERIAL_HEX]');
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  const issuer = new X509Certificate(readFileSync(caPem));
  gc();
  gc();
  const before = process.memoryUsage();
  const started = performance.now();
  const source = new CrlRevocationSource([crl], [issuer], 3_600_000);
  await source.start();
  const seconds = (performance.now() - started) / 1000;
  const peakRss = process.resourceUsage().maxRSS * 1024;
  gc();
  gc();
  const after = process.memoryUsage();
  const status = source.status(new Date());
  const found = probe ? source.isRevoked(issuer.fingerprint256, probe) : undefined;
  source.close();
  process.stdout.write(
    `${JSON.stringify({
      seconds,
      entries: status.entries,
      stale: status.stale,
      probeRevoked: found,
      heapGrowthMiB: (after.heapUsed - before.heapUsed) / MiB,
      rssGrowthMiB: (after.rss - before.rss) / MiB,
      rssPeakGrowthMiB: (peakRss - before.rss) / MiB,
      // `external` includes the array buffers (Node's Buffers among them): counted once.
      externalGrowthMiB: (after.external - before.external) / MiB,
    })}\n`,
  );
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
