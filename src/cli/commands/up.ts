import { isInitialized, resolveHome } from '../../ca/index.js';
import { jsonLogger, LOG_LEVELS, type LogLevel } from '../../gateway/index.js';
import { badRequest } from '../../errors/index.js';
import { demoRevocationUrl, parseListenAddress, prepareDemoCenter, revocationListenOf, startDemoUpstream, startServeStack, untilStopped, type DemoCenter, type ServeSummary } from '../../stack/index.js';
import { JSON_OPTION, type Command } from '../command.js';
import { actor } from '../authority.js';
import { caPassphrase } from '../secrets.js';
import { gatewayConfigFromFlags } from './gateway.js';
import { CONSOLE_LISTEN_OPTION, consoleListen, DEFAULT_GATEWAY_LISTEN, DEFAULT_PORTAL_LISTEN, REVOCATION_LISTEN_OPTION, revocationListen, summaryLines } from './serve.js';

/** Shell quoting for paths printed in copy-and-paste commands. */
const q = (s: string) => (/^[\w./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** The three things a newcomer does next, as lines to copy. */
export function nextSteps(c: DemoCenter, s: ServeSummary): string[] {
  const gw = s.gateway.listeners[0]!.url;
  const home = q(c.home);
  const root = q(c.root.file);
  const unused = c.notice.state === 'active';
  const step1 = unused
    ? [
        `1. Download the facility's certificate: open ${s.portal.url} in a browser. It warns that it does not know the`,
        `   demo CA (expected: compare the SHA-256 above with the page's root thumbprint, then proceed). Type the two IDs`,
        '   and a password (8 characters or more) twice, and download the .p12. Or, in a terminal:',
        "     echo 'demo-password-1' > pw.txt",
        `     npx sekisho enroll --portal ${s.portal.url} --ca ${root} \\`,
        `       --request-id ${c.notice.requestId} --reference-id ${c.notice.referenceId} --password-file pw.txt --out demo.p12`,
      ]
    : [
        `1. The demo notice is ${c.notice.state}${c.notice.serial ? ` (certificate ${c.notice.serial} was issued with it)` : ''}. For another certificate, make a new notice:`,
        `     npx sekisho notice create --home ${home} --facility ${c.facility.number} --no-pdf`,
        `   and download with its IDs at ${s.portal.url} (or with npx sekisho enroll, see sekisho enroll --help).`,
      ];
  return [
    'Next steps:',
    ...step1,
    '2. Call the gateway with it; the demo service behind it says who you are (facility number and certificate serial):',
    '     openssl pkcs12 -in demo.p12 -passin file:pw.txt -nokeys -clcerts -out demo-cert.pem',
    '     openssl pkcs12 -in demo.p12 -passin file:pw.txt -nocerts -nodes -out demo-key.pem',
    `     curl --cert demo-cert.pem --key demo-key.pem --cacert ${root} ${gw}`,
    '3. Revoke it and watch the gateway refuse it (it rereads revocations every second; its log below says why):',
    `     npx sekisho cert revoke SERIAL --home ${home} --reason keyCompromise`,
    `     curl --cert demo-cert.pem --key demo-key.pem --cacert ${root} ${gw}`,
    `   (SERIAL is the one the demo service printed; npx sekisho cert list --home ${home} lists them.)`,
  ];
}

export const upCommand: Command = {
  path: ['up'],
  summary: 'start a demo center: CA, demo facility and notice, portal, gateway and a demo service, on loopback',
  options: {
    home: { type: 'string', description: 'demo data directory (default $SEKISHO_HOME or ./sekisho-data); made on the first run, reused later', valueName: 'DIR' },
    listen: { type: 'string', description: `gateway address (default ${DEFAULT_GATEWAY_LISTEN}; port 0 picks one)`, valueName: 'HOST:PORT' },
    portal: { type: 'string', description: `portal, EST, CRL and OCSP address (default ${DEFAULT_PORTAL_LISTEN}; port 0 picks one)`, valueName: 'HOST:PORT' },
    ...REVOCATION_LISTEN_OPTION,
    ...CONSOLE_LISTEN_OPTION,
    'log-level': { type: 'string', description: "gateway log on stderr: debug, info, warn (default: refusals and errors) or error", valueName: 'LEVEL' },
    ...JSON_OPTION,
  },
  async run(ctx) {
    const v = ctx.values;
    const home = resolveHome(v.home as string | undefined, ctx.env);
    const portal = parseListenAddress((v.portal as string | undefined) ?? DEFAULT_PORTAL_LISTEN, '--portal');
    const listen = (v.listen as string | undefined) ?? DEFAULT_GATEWAY_LISTEN;
    parseListenAddress(listen, '--listen'); // bad input changes nothing: checked before the demo home is made
    const consoleAt = consoleListen(v);
    const revocationFlag = v['revocation-listen'] !== undefined ? revocationListen(v) : undefined;
    const firstRevocation = v['revocation-listen'] === 'off' ? undefined : (revocationFlag ?? revocationListen(v));
    const logLevel = (v['log-level'] as string | undefined) ?? 'warn';
    if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) throw badRequest('LOG_LEVEL_INVALID', `--log-level is one of ${LOG_LEVELS.join(', ')}`);
    const center = await prepareDemoCenter({
      home,
      ...(ctx.env.SEKISHO_PASSPHRASE !== undefined ? { passphrase: ctx.env.SEKISHO_PASSPHRASE } : {}),
      ...(ctx.isTTY ? { askPassphrase: () => caPassphrase(ctx.env, true) } : {}),
      actor: actor(ctx.env),
      // Only used when the demo CA is created: its certificates carry this address.
      ...(firstRevocation && !isInitialized(home) ? { revocationUrl: await demoRevocationUrl(firstRevocation) } : {}),
    });
    // Listen where the certificates point, unless told another fixed address (port 0 means "where they point", or a free port).
    const published = center.revocation ? revocationListenOf(center.revocation) : undefined;
    const revocation = v['revocation-listen'] === 'off' ? undefined : revocationFlag && revocationFlag.port !== 0 ? revocationFlag : (published ?? firstRevocation);
    const upstream = await startDemoUpstream();
    let stack;
    try {
      const cfg = gatewayConfigFromFlags({ listen, upstream: upstream.url, home, 'log-level': logLevel }, ctx.env);
      stack = await startServeStack({
        gateway: cfg,
        home,
        portal,
        ...(revocation ? { revocation } : {}),
        ...(consoleAt ? { console: consoleAt } : {}),
        unlock: (ca) => ca.unlock(center.passphrase),
        log: jsonLogger(cfg.logLevel as LogLevel, (l) => ctx.err(l.replace(/\n$/, ''))),
      });
    } catch (e) {
      await upstream.close();
      throw e;
    }
    // Signals are handled before the summary is printed: whoever reads it may stop the center at once.
    const stopped = untilStopped(stack);
    const s = stack.summary();
    const steps = nextSteps(center, s);
    if (v.json) {
      const { passphrase: _secret, ...shown } = center;
      ctx.json({ ...shown, ...s, upstream: upstream.url, steps });
    } else {
      ctx.out(
        [
          `sekisho demo center ${center.created ? 'created and ' : ''}running — data in ${home}`,
          '',
          ...summaryLines(s),
          `  demo service behind the gateway      ${upstream.url} (loopback only)`,
          `  root certificate                     ${center.root.file}`,
          `    SHA-256 ${center.root.sha256}`,
          `  demo facility                        ${center.facility.number} ${center.facility.name}`,
          `  issuance notice                      ${center.notice.id} (${center.notice.state}, valid until ${center.notice.expiresAt.slice(0, 10)})`,
          `    request ID                         ${center.notice.requestId}`,
          `    reference ID                       ${center.notice.referenceId}`,
          '',
          ...(center.passphraseFile
            ? [
                `!!! DEMO ONLY: the CA passphrase was generated and is kept in ${center.passphraseFile} (mode 0600).`,
                '!!! Anyone who can read that file can sign with this CA. For a real center set SEKISHO_PASSPHRASE',
                '!!! before the first run (or create the CA with sekisho init) and keep the passphrase elsewhere.',
              ]
            : []),
          `The notice's IDs are kept in ${center.stateFile} (0600) so this demo can show them again; a real notice's IDs are shown once.`,
          '',
          ...steps,
          '',
          'Stop with Ctrl-C; run sekisho up again to continue with the same data.',
        ].join('\n'),
      );
    }
    try {
      await stopped;
    } finally {
      await upstream.close();
    }
    return 0;
  },
};
