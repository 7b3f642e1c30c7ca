import { X509Certificate } from 'node:crypto';
import { describeCertificate, describePublicKey, formatName, type CertificateView } from '../../pki/index.js';
import { result, type Check } from '../check.js';
import type { Findings } from '../findings.js';

const HASH_BY_OID: Record<string, string> = {
  '1.2.840.113549.1.1.4': 'MD5', '1.2.840.113549.1.1.5': 'SHA-1', '1.2.840.10045.4.1': 'SHA-1', '1.2.840.10040.4.3': 'SHA-1',
  '1.2.840.113549.1.1.11': 'SHA-256', '1.2.840.113549.1.1.12': 'SHA-384', '1.2.840.113549.1.1.13': 'SHA-512',
  '1.2.840.10045.4.3.2': 'SHA-256', '1.2.840.10045.4.3.3': 'SHA-384', '1.2.840.10045.4.3.4': 'SHA-512',
  '1.2.840.113549.1.1.10': 'RSASSA-PSS',
};

interface ChainCert {
  der: Buffer;
  view?: CertificateView;
  node?: X509Certificate;
  error?: string;
}

function chainOf(f: Findings): ChainCert[] {
  return (f.certificate?.chain ?? []).map((b64) => {
    const der = Buffer.from(b64, 'base64');
    try {
      return { der, view: describeCertificate(der), node: new X509Certificate(der) };
    } catch (e) {
      return { der, error: (e as Error).message };
    }
  });
}

const none = (f: Findings) => !f.certificate?.chain.length;
const label = (c: ChainCert, i: number) => `${i === 0 ? 'leaf' : `chain[${i}]`} ${c.view ? formatName(c.view.subject) : '(unparsable)'}`;

/**
 * The certificate checks judge only what was seen: a server that let a
 * version through but whose certificate could not be read (TLS 1.3 only and
 * a handshake that failed, a client certificate required and none given) is
 * not judged compliant on them. Before, they all skipped and nothing failed.
 */
export const certificateObserved: Check = {
  id: 'certificate-observed',
  title: 'Server certificate read',
  cites: 'CRYPTREC GL-3001 (the certificate is part of the profile)',
  effective: '2020-07-07',
  run(f) {
    const required = "the server's certificate chain, to judge it";
    if (!f.protocols.some((p) => p.supported)) return result('skip', 'no protocol version was accepted', required);
    if (!none(f)) return result('pass', `${1 + (f.certificate?.others?.length ?? 0)} chain(s) read`, required);
    return result('fail', "the server's certificate could not be read, so none of the certificate checks ran (a server that requires a client certificate: give the scan one with --cert and --key)", required);
  },
};

export const certificateSignatures: Check = {
  id: 'certificate-signature-hash',
  title: 'Certificate signature hashes',
  cites: 'CRYPTREC GL-3001 (SHA-1 forbidden in certificates)',
  effective: '2020-07-07',
  run(f, p) {
    const required = `signatures with ${p.certificate.signatureHashes.join('/')} everywhere in the chain`;
    if (none(f)) return result('skip', 'no certificate was received', required);
    const bad: string[] = [];
    const seen: string[] = [];
    chainOf(f).forEach((c, i) => {
      if (!c.view) return bad.push(`${label(c, i)}: unparsable (${c.error})`);
      const hash = HASH_BY_OID[c.view.signatureAlgorithmOid] ?? c.view.signatureAlgorithmOid;
      seen.push(hash);
      if (!p.certificate.signatureHashes.includes(hash)) bad.push(`${label(c, i)} signed with ${hash}`);
    });
    return bad.length ? result('fail', bad.join('; '), required) : result('pass', `all signed with ${[...new Set(seen)].join(', ')}`, required);
  },
};

export const certificateKeys: Check = {
  id: 'certificate-key-size',
  title: 'Certificate key types and sizes',
  cites: 'CRYPTREC GL-3001 (RSA ≥ 2048, ECDSA ≥ 256 bits)',
  effective: '2020-07-07',
  run(f, p) {
    const required = `RSA ≥ ${p.certificate.rsaMinBits} bits, ECDSA ≥ ${p.certificate.ecdsaMinBits} bits`;
    if (none(f)) return result('skip', 'no certificate was received', required);
    const found: string[] = [];
    const bad: string[] = [];
    chainOf(f).forEach((c, i) => {
      if (!c.view) return;
      const d = describePublicKey(c.view.publicKey);
      const text = `${label(c, i)}: ${d.algorithm === 'ec' ? `ECDSA ${d.curve}` : d.algorithm.toUpperCase()} ${d.bits} bits`;
      found.push(text);
      const min = d.algorithm === 'rsa' ? p.certificate.rsaMinBits : d.algorithm === 'ec' ? p.certificate.ecdsaMinBits : Infinity;
      if (d.bits < min) bad.push(text);
    });
    return bad.length ? result('fail', bad.join('; '), required) : result('pass', found.join('; '), required);
  },
};

export const certificateValidity: Check = {
  id: 'certificate-validity',
  title: 'Certificate validity period',
  cites: 'RFC 5280 §4.1.2.5',
  effective: '2008-05-01',
  run(f, _p, ctx) {
    const required = 'every certificate in the chain valid now';
    if (none(f)) return result('skip', 'no certificate was received', required);
    const bad: string[] = [];
    let leafUntil = '';
    chainOf(f).forEach((c, i) => {
      if (!c.view) return;
      if (i === 0) leafUntil = c.view.notAfter.toISOString().slice(0, 10);
      if (ctx.now < c.view.notBefore) bad.push(`${label(c, i)} not valid before ${c.view.notBefore.toISOString()}`);
      if (ctx.now > c.view.notAfter) bad.push(`${label(c, i)} expired ${c.view.notAfter.toISOString()}`);
    });
    return bad.length ? result('fail', bad.join('; '), required) : result('pass', `valid; leaf until ${leafUntil}`, required);
  },
};

export const certificateName: Check = {
  id: 'certificate-name',
  title: 'Server name in the certificate',
  cites: 'RFC 6125 §6 (names in subjectAltName)',
  effective: '2011-03-01',
  run(f, _p, ctx) {
    const required = `subjectAltName covers ${ctx.hostname}`;
    const leaf = chainOf(f)[0];
    if (!leaf?.node) return result('skip', 'no parsable leaf certificate', required);
    const ip = /^[\d.]+$|:/.test(ctx.hostname);
    const ok = ip ? leaf.node.checkIP(ctx.hostname) : leaf.node.checkHost(ctx.hostname, { subject: 'never' });
    return ok ? result('pass', `matches ${ctx.hostname}`, required) : result('fail', `subjectAltName is ${leaf.node.subjectAltName ?? 'absent'}`, required);
  },
};

export const chainComplete: Check = {
  id: 'certificate-chain',
  title: 'Certificate chain complete and trusted',
  cites: 'RFC 5246 §7.4.2 / RFC 8446 §4.4.2 (the server sends its chain); IHE ITI-19 (trust anchors)',
  effective: '2008-08-01',
  run(f, _p, ctx) {
    const required = ctx.trustAnchors.length ? 'the chain links leaf → given trust anchors' : 'the chain links leaf → its issuers (give --ca to check trust)';
    const chain = chainOf(f);
    if (!chain.length || !chain.every((c) => c.node)) return result('skip', 'no parsable certificate chain', required);
    for (let i = 0; i + 1 < chain.length; i++) {
      if (!chain[i]!.node!.checkIssued(chain[i + 1]!.node!) || !chain[i]!.node!.verify(chain[i + 1]!.node!.publicKey)) {
        return result('fail', `chain[${i}] is not issued by chain[${i + 1}] (wrong order or a missing intermediate)`, required);
      }
    }
    if (!ctx.trustAnchors.length) return result('info', `${chain.length} certificate(s), linked; trust not checked`, required);
    const last = chain[chain.length - 1]!.node!;
    const anchors = ctx.trustAnchors.map((d) => new X509Certificate(d));
    const anchored = anchors.some((a) => a.raw.equals(last.raw) || (last.checkIssued(a) && last.verify(a.publicKey)));
    return anchored ? result('pass', `${chain.length} certificate(s) up to a given trust anchor`, required) : result('fail', `the chain ends at ${last.issuer.replace(/\n/g, ', ')}, which is not a given trust anchor (missing intermediate?)`, required);
  },
};

export const ocspStapling: Check = {
  id: 'ocsp-stapling',
  title: 'OCSP stapling',
  cites: 'RFC 6066 §8 (status_request); CRYPTREC GL-3001 (推奨)',
  effective: '2020-07-07',
  run(f) {
    const required = 'should staple an OCSP response';
    if (!f.certificate) return result('skip', 'no certificate was received', required);
    return f.certificate.ocspStapled ? result('pass', 'stapled', required) : result('info', 'no stapled response', required);
  },
};
