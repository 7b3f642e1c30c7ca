/**
 * Scanner benchmark: a full `sekisho scan` (wire enumeration, full handshakes,
 * HTTP probe, judgement) against `testssl -p -E` (protocols and every suite
 * per protocol: the part of testssl that yields the same findings) on the same
 * panel servers, one tool at a time so neither slows the other. Prints one
 * JSON document; `main()` returns it for bench/run.ts.
 */
import { performance } from 'node:perf_hooks';
import { complianceProfile } from '../src/policy/index.js';
import { scanServer } from '../src/scan/index.js';
import { PANEL, startTlsServer, type PanelName } from '../src/testing/tls-servers.js';
import { runTestssl, testsslBinary } from '../src/testing/testssl.js';
import { invokedDirectly, log, round, runDirectly } from './support.js';

const SERVERS: PanelName[] = ['nginx-compliant', 'nginx-tls11', 'nginx-cbc', 'openssl-rsa1024'];

export async function main(): Promise<unknown> {
  if (!testsslBinary()) return { bench: 'scan', skipped: 'testssl.sh is not installed (apt-get install testssl.sh)' };
  const results = [];
  for (const name of SERVERS) {
    const server = await startTlsServer(PANEL[name]);
    try {
      log(`bench scan: ${name}`);
      const ours: number[] = [];
      let sameFindings = true;
      let report;
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        report = await scanServer({
          target: { host: server.host, port: server.port },
          profile: complianceProfile('high'),
          ...(server.clientCertPem && server.clientKeyPem ? { clientCredential: { cert: server.clientCertPem, key: server.clientKeyPem } } : {}),
        });
        ours.push((performance.now() - t0) / 1000);
      }
      const theirs = await runTestssl(server.host, server.port);
      for (const p of report!.findings.protocols) {
        const a = p.supported ? [...p.suites].sort() : [];
        const b = theirs.protocols[p.protocol] ? [...(theirs.suites[p.protocol] ?? [])].sort() : [];
        if (JSON.stringify(a) !== JSON.stringify(b)) sameFindings = false;
      }
      const median = [...ours].sort((x, y) => x - y)[1]!;
      results.push({ server: name, sekishoSeconds: round(median), sekishoRuns: ours.map((x) => round(x)), testsslSeconds: round(theirs.seconds, 2), ratio: round(theirs.seconds / median, 1), sameProtocolsAndSuites: sameFindings });
    } finally {
      await server.stop();
    }
  }
  const ratios = results.map((r) => r.ratio).sort((a, b) => a - b);
  return { bench: 'scan', goal: 'testssl seconds / sekisho seconds ≥ 10 with the same findings', results, minRatio: ratios[0], medianRatio: ratios[Math.floor(ratios.length / 2)] };
}

if (invokedDirectly(import.meta.url)) runDirectly(main);
