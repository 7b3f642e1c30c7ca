import { createHash, KeyObject } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AccessDescription,
  AuthorityInfoAccessSyntax,
  AuthorityKeyIdentifier,
  BasicConstraints,
  CRLDistributionPoints,
  DistributionPoint,
  DistributionPointName,
  ExtendedKeyUsage,
  Extension,
  Extensions,
  GeneralName,
  KeyIdentifier,
  KeyUsage,
  KeyUsageFlags,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
  id_ad_caIssuers,
  id_ad_ocsp,
} from '@peculiar/asn1-x509';
import { spkiDer } from './keys.js';
import { readTlv, children } from './der-reader.js';

export const EXTENSION_OIDS = {
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extendedKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  crlDistributionPoints: '2.5.29.31',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
} as const;

export const KEY_USAGES = ['digitalSignature', 'nonRepudiation', 'keyEncipherment', 'dataEncipherment', 'keyAgreement', 'keyCertSign', 'cRLSign'] as const;
export type KeyUsageName = (typeof KEY_USAGES)[number];

export const EKU_OIDS = {
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;
export type ExtendedKeyUsageName = keyof typeof EKU_OIDS;

/** The extensions sekisho writes, as plain values. Also what it reads back for linting. */
export interface ExtensionValues {
  basicConstraints?: { ca: boolean; pathLength?: number };
  keyUsage?: KeyUsageName[];
  /** EKU as OIDs' names where known, else dotted OIDs. */
  extendedKeyUsage?: string[];
  subjectAltName?: { dns: string[]; ip: string[] };
  subjectKeyIdentifier?: Buffer;
  authorityKeyIdentifier?: Buffer;
  crlDistributionPoints?: string[];
  ocspUrls?: string[];
  caIssuersUrls?: string[];
}

export interface ExtensionView extends ExtensionValues {
  /** OIDs of every extension present, in order, with criticality. */
  present: { oid: string; critical: boolean }[];
}

/**
 * Key identifier per RFC 7093 §2 method 1: the leftmost 160 bits of the
 * SHA-256 of the subjectPublicKey BIT STRING value.
 */
export function keyIdentifier(key: KeyObject): Buffer {
  const spki = spkiDer(key);
  const top = readTlv(spki, 0);
  const [, bitString] = children(spki, top);
  if (!bitString) throw new Error('SubjectPublicKeyInfo without a key');
  const keyBits = spki.subarray(bitString.contentStart + 1, bitString.end); // skip unused-bits octet
  return createHash('sha256').update(keyBits).digest().subarray(0, 20);
}

function ext(oid: string, critical: boolean, value: unknown): Extension {
  return new Extension({ extnID: oid, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });
}

const urlNames = (urls: readonly string[]) => urls.map((u) => new GeneralName({ uniformResourceIdentifier: u }));

/** Encodes the values as X.509 extensions, with RFC 5280's criticality. */
export function encodeExtensions(v: ExtensionValues): Extensions {
  const out: Extension[] = [];
  if (v.basicConstraints) {
    const bc = new BasicConstraints({ cA: v.basicConstraints.ca });
    if (v.basicConstraints.pathLength !== undefined) bc.pathLenConstraint = v.basicConstraints.pathLength;
    out.push(ext(EXTENSION_OIDS.basicConstraints, true, bc));
  }
  if (v.keyUsage) {
    const flags = v.keyUsage.reduce((f, k) => f | KeyUsageFlags[k === 'cRLSign' ? 'cRLSign' : k], 0);
    out.push(ext(EXTENSION_OIDS.keyUsage, true, new KeyUsage(flags)));
  }
  if (v.extendedKeyUsage) {
    const oids = v.extendedKeyUsage.map((n) => (EKU_OIDS as Record<string, string>)[n] ?? n);
    out.push(ext(EXTENSION_OIDS.extendedKeyUsage, false, new ExtendedKeyUsage(oids)));
  }
  if (v.subjectAltName && (v.subjectAltName.dns.length || v.subjectAltName.ip.length)) {
    const names = [
      ...v.subjectAltName.dns.map((d) => new GeneralName({ dNSName: d })),
      ...v.subjectAltName.ip.map((ip) => new GeneralName({ iPAddress: ip })),
    ];
    out.push(ext(EXTENSION_OIDS.subjectAltName, false, new SubjectAlternativeName(names)));
  }
  if (v.subjectKeyIdentifier) {
    out.push(ext(EXTENSION_OIDS.subjectKeyIdentifier, false, new SubjectKeyIdentifier(v.subjectKeyIdentifier)));
  }
  if (v.authorityKeyIdentifier) {
    const aki = new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(v.authorityKeyIdentifier) });
    out.push(ext(EXTENSION_OIDS.authorityKeyIdentifier, false, aki));
  }
  if (v.crlDistributionPoints?.length) {
    const dps = new CRLDistributionPoints([
      new DistributionPoint({ distributionPoint: new DistributionPointName({ fullName: urlNames(v.crlDistributionPoints) }) }),
    ]);
    out.push(ext(EXTENSION_OIDS.crlDistributionPoints, false, dps));
  }
  const access = [
    ...(v.ocspUrls ?? []).map((u) => new AccessDescription({ accessMethod: id_ad_ocsp, accessLocation: new GeneralName({ uniformResourceIdentifier: u }) })),
    ...(v.caIssuersUrls ?? []).map((u) => new AccessDescription({ accessMethod: id_ad_caIssuers, accessLocation: new GeneralName({ uniformResourceIdentifier: u }) })),
  ];
  if (access.length) out.push(ext(EXTENSION_OIDS.authorityInfoAccess, false, new AuthorityInfoAccessSyntax(access)));
  return new Extensions(out);
}

const EKU_NAME_BY_OID = new Map<string, string>(Object.entries(EKU_OIDS).map(([k, v]) => [v, k]));

/** Reads extensions back into values (unknown ones only listed in `present`). */
export function readExtensions(extensions: Extensions | undefined): ExtensionView {
  const view: ExtensionView = { present: [] };
  for (const e of extensions ?? []) {
    view.present.push({ oid: e.extnID, critical: e.critical });
    const value = e.extnValue.buffer;
    switch (e.extnID) {
      case EXTENSION_OIDS.basicConstraints: {
        const bc = AsnConvert.parse(value, BasicConstraints);
        view.basicConstraints = bc.pathLenConstraint === undefined ? { ca: bc.cA } : { ca: bc.cA, pathLength: bc.pathLenConstraint };
        break;
      }
      case EXTENSION_OIDS.keyUsage:
        view.keyUsage = AsnConvert.parse(value, KeyUsage)
          .toJSON()
          .map((k) => (k === 'crlSign' ? 'cRLSign' : k) as string)
          .filter((k): k is KeyUsageName => (KEY_USAGES as readonly string[]).includes(k));
        break;
      case EXTENSION_OIDS.extendedKeyUsage:
        view.extendedKeyUsage = Array.from(AsnConvert.parse(value, ExtendedKeyUsage), (o) => EKU_NAME_BY_OID.get(o) ?? o);
        break;
      case EXTENSION_OIDS.subjectAltName: {
        const san = AsnConvert.parse(value, SubjectAlternativeName);
        view.subjectAltName = {
          dns: san.filter((g) => g.dNSName !== undefined).map((g) => g.dNSName!),
          ip: san.filter((g) => g.iPAddress !== undefined).map((g) => g.iPAddress!),
        };
        break;
      }
      case EXTENSION_OIDS.subjectKeyIdentifier:
        view.subjectKeyIdentifier = Buffer.from(AsnConvert.parse(value, SubjectKeyIdentifier).buffer);
        break;
      case EXTENSION_OIDS.authorityKeyIdentifier: {
        const aki = AsnConvert.parse(value, AuthorityKeyIdentifier);
        if (aki.keyIdentifier) view.authorityKeyIdentifier = Buffer.from(aki.keyIdentifier.buffer);
        break;
      }
      case EXTENSION_OIDS.crlDistributionPoints:
        view.crlDistributionPoints = AsnConvert.parse(value, CRLDistributionPoints).flatMap((dp) =>
          (dp.distributionPoint?.fullName ?? []).flatMap((g) => (g.uniformResourceIdentifier ? [g.uniformResourceIdentifier] : [])),
        );
        break;
      case EXTENSION_OIDS.authorityInfoAccess: {
        const aia = AsnConvert.parse(value, AuthorityInfoAccessSyntax);
        const urls = (m: string) => aia.filter((a) => a.accessMethod === m && a.accessLocation.uniformResourceIdentifier).map((a) => a.accessLocation.uniformResourceIdentifier!);
        view.ocspUrls = urls(id_ad_ocsp);
        view.caIssuersUrls = urls(id_ad_caIssuers);
        break;
      }
    }
  }
  return view;
}
