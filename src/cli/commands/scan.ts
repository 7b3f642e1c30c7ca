import { readFileSync } from 'node:fs';
import { badRequest } from '../../errors/index.js';
import { certificatesFromPem } from '../../pki/index.js';
import { COMPLIANCE_PROFILES, complianceProfile, isComplianceProfileName, loadComplianceProfile } from '../../policy/index.js';
import { htmlReport, scanServer, textReport } from '../../scan/index.js';
import { writeFileAtomic } from '../../ca/index.js';
import { JSON_OPTION, requires, type Command } from '../command.js';

function parseTarget(s: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:]+):(\d+)$/.exec(s) ?? /^([^:]+)$/.exec(s);
  const port = m?.[2] ? Number(m[2]) : 443;
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535) throw badRequest('SCAN_TARGET_INVALID', `"${s}" is not host:port (e.g. 127.0.0.1:8443 or center.example:443)`);
  return { host: m[1]!, port };
}

function readFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch {
    throw badRequest('SCAN_FILE_UNREADABLE', `cannot read the ${what} file ${path}`);
  }
}

export const scanCommand: Command = {
  path: ['scan'],
  summary: 'judge a TLS server against the CRYPTREC / MHLW profiles (exit 0 compliant, 1 not, 2 could not scan)',
  usage: 'scan <host:port> [--profile high|recommended|exception|mhlw|FILE]',
  positionals: [{ name: 'host:port', required: true }],
  options: {
    profile: { type: 'string', description: `profile: ${COMPLIANCE_PROFILES.join(', ')} (default high), or a JSON profile file`, valueName: 'NAME|FILE' },
    sni: { type: 'string', description: 'server name to send (default: the host, unless it is an IP address)', valueName: 'NAME' },
    cert: { type: 'string', description: 'client certificate (PEM) for servers that require one', valueName: 'FILE' },
    key: { type: 'string', description: 'private key (PEM) of --cert', valueName: 'FILE' },
    ca: { type: 'string', description: 'trust anchors (PEM) for the chain check', valueName: 'FILE' },
    html: { type: 'string', description: 'also write an HTML report for auditors', valueName: 'FILE' },
    timeout: { type: 'string', description: 'per-probe timeout in milliseconds (default 3000)', valueName: 'MS' },
    ...JSON_OPTION,
  },
  validators: [requires('cert', 'key'), requires('key', 'cert')],
  failureExitCode: 2,
  async run(ctx) {
    const v = ctx.values;
    const target = parseTarget(ctx.positionals[0]!);
    const name = (v.profile as string | undefined) ?? 'high';
    const profile = isComplianceProfileName(name) ? complianceProfile(name) : loadComplianceProfile(name);
    const timeoutMs = v.timeout === undefined ? 3000 : Number(v.timeout);
    if (!Number.isInteger(timeoutMs) || timeoutMs < 100 || timeoutMs > 60_000) throw badRequest('SCAN_TIMEOUT_INVALID', '--timeout must be 100–60000 ms');
    const trustAnchors = v.ca ? certificatesFromPem(readFile(v.ca as string, '--ca').toString('latin1')) : [];
    if (v.ca && trustAnchors.length === 0) throw badRequest('SCAN_CA_EMPTY', `no PEM certificate in ${v.ca as string}`);
    const report = await scanServer({
      target: { ...target, ...(v.sni ? { serverName: v.sni as string } : {}) },
      profile,
      ...(v.cert ? { clientCredential: { cert: readFile(v.cert as string, '--cert'), key: readFile(v.key as string, '--key') } } : {}),
      trustAnchors,
      timeoutMs,
    });
    if (v.html) writeFileAtomic(v.html as string, htmlReport(report));
    if (v.json) ctx.json(report);
    else ctx.out(textReport(report));
    return report.compliant ? 0 : 1;
  },
};
