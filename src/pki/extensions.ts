import { createHash, KeyObject } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  AccessDescription,
  AuthorityInfoAccessSyntax,
  AuthorityKeyIdentifier,
  BasicConstraints,
  CRLDistributionPoints,
  DistributionPoint,
  DistributionPointName,
  ExtendedKeyUsage,
  GeneralName,
  KeyUsage,
  KeyUsageFlags,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
  id_ad_caIssuers,
  id_ad_ocsp,
} from '@peculiar/asn1-x509';
import { spkiDer } from './keys.js';
import { children, readTlv, sequence, oid as derOid, boolean as derBoolean, octetString, decodeOid, contentBytes, contextPrimitive, TAG } from './der.js';

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
  return keyIdentifierOfSpki(spkiDer(key));
}

export function keyIdentifierOfSpki(spki: Buffer): Buffer {
  const top = readTlv(spki, 0);
  const [, bitString] = children(spki, top);
  if (!bitString) throw new Error('SubjectPublicKeyInfo without a key');
  const keyBits = spki.subarray(bitString.start + 1, bitString.end); // skip unused-bits octet
  return createHash('sha256').update(keyBits).digest().subarray(0, 20);
}

/** A raw extension: OID, criticality and the DER of extnValue's content. */
export interface RawExtension {
  oid: string;
  critical: boolean;
  value: Buffer;
}

/**
 * ```asn1
 * Extension ::= SEQUENCE { extnID OBJECT IDENTIFIER, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
 * ```
 */
function ext(id: string, critical: boolean, value: unknown): Buffer {
  const valueDer = Buffer.from(AsnConvert.serialize(value));
  return critical ? sequence(derOid(id), derBoolean(true), octetString(valueDer)) : sequence(derOid(id), octetString(valueDer));
}

/**
 * Extensions whose value is the same for every certificate of a profile
 * (basic constraints, key usages, CRL and AIA URLs) are encoded once; the key
 * is the value itself, so a different value is a different entry.
 */
const staticExtensions = new Map<string, Buffer>();
function staticExt(id: string, critical: boolean, key: unknown, make: () => unknown): Buffer {
  const k = `${id}|${critical}|${JSON.stringify(key)}`;
  let der = staticExtensions.get(k);
  if (!der) {
    der = ext(id, critical, make());
    if (staticExtensions.size < 256) staticExtensions.set(k, der);
  }
  return der;
}

const urlNames = (urls: readonly string[]) => urls.map((u) => new GeneralName({ uniformResourceIdentifier: u }));

/** Encodes the values as the DER `Extensions` SEQUENCE, with RFC 5280's criticality. */
export function encodeExtensions(v: ExtensionValues): Buffer {
  const out: Buffer[] = [];
  if (v.basicConstraints) {
    const b = v.basicConstraints;
    out.push(
      staticExt(EXTENSION_OIDS.basicConstraints, true, b, () => {
        const bc = new BasicConstraints({ cA: b.ca });
        if (b.pathLength !== undefined) bc.pathLenConstraint = b.pathLength;
        return bc;
      }),
    );
  }
  if (v.keyUsage) {
    const flags = v.keyUsage.reduce((f, k) => f | KeyUsageFlags[k], 0);
    out.push(staticExt(EXTENSION_OIDS.keyUsage, true, flags, () => new KeyUsage(flags)));
  }
  if (v.extendedKeyUsage) {
    const oids = v.extendedKeyUsage.map((n) => (EKU_OIDS as Record<string, string>)[n] ?? n);
    out.push(staticExt(EXTENSION_OIDS.extendedKeyUsage, false, oids, () => new ExtendedKeyUsage(oids)));
  }
  if (v.subjectAltName && (v.subjectAltName.dns.length || v.subjectAltName.ip.length)) {
    const names = [
      ...v.subjectAltName.dns.map((d) => new GeneralName({ dNSName: d })),
      ...v.subjectAltName.ip.map((ip) => new GeneralName({ iPAddress: ip })),
    ];
    out.push(ext(EXTENSION_OIDS.subjectAltName, false, new SubjectAlternativeName(names)));
  }
  if (v.subjectKeyIdentifier) {
    out.push(sequence(derOid(EXTENSION_OIDS.subjectKeyIdentifier), octetString(octetString(v.subjectKeyIdentifier))));
  }
  if (v.authorityKeyIdentifier) {
    // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING }
    out.push(sequence(derOid(EXTENSION_OIDS.authorityKeyIdentifier), octetString(sequence(contextPrimitive(0, v.authorityKeyIdentifier)))));
  }
  if (v.crlDistributionPoints?.length) {
    const urls = v.crlDistributionPoints;
    out.push(
      staticExt(EXTENSION_OIDS.crlDistributionPoints, false, urls, () => new CRLDistributionPoints([new DistributionPoint({ distributionPoint: new DistributionPointName({ fullName: urlNames(urls) }) })])),
    );
  }
  const accessKey = [v.ocspUrls ?? [], v.caIssuersUrls ?? []];
  const access = [
    ...(v.ocspUrls ?? []).map((u) => new AccessDescription({ accessMethod: id_ad_ocsp, accessLocation: new GeneralName({ uniformResourceIdentifier: u }) })),
    ...(v.caIssuersUrls ?? []).map((u) => new AccessDescription({ accessMethod: id_ad_caIssuers, accessLocation: new GeneralName({ uniformResourceIdentifier: u }) })),
  ];
  if (access.length) out.push(staticExt(EXTENSION_OIDS.authorityInfoAccess, false, accessKey, () => new AuthorityInfoAccessSyntax(access)));
  return sequence(...out);
}

const EKU_NAME_BY_OID = new Map<string, string>(Object.entries(EKU_OIDS).map(([k, v]) => [v, k]));

/** Reads extensions back into values (unknown ones only listed in `present`). */
/** Parsed values of the extensions that repeat across certificates, keyed by their exact bytes. */
const parsedStatic = new Map<string, Partial<ExtensionValues>>();
const CACHEABLE = new Set<string>([EXTENSION_OIDS.basicConstraints, EXTENSION_OIDS.keyUsage, EXTENSION_OIDS.extendedKeyUsage, EXTENSION_OIDS.crlDistributionPoints, EXTENSION_OIDS.authorityInfoAccess]);

export function readExtensions(extensions: readonly RawExtension[]): ExtensionView {
  const view: ExtensionView = { present: [] };
  for (const e of extensions) {
    view.present.push({ oid: e.oid, critical: e.critical });
    if (CACHEABLE.has(e.oid)) {
      const key = `${e.oid}|${e.value.toString('hex')}`;
      let part = parsedStatic.get(key);
      if (!part) {
        const one: ExtensionView = { present: [] };
        readExtensionValue(one, e.oid, e.value);
        const { present: _p, ...values } = one;
        part = values;
        if (parsedStatic.size < 256) parsedStatic.set(key, part);
      }
      Object.assign(view, copyValues(part));
      continue;
    }
    readExtensionValue(view, e.oid, e.value);
  }
  return view;
}

/** A copy of cached extension values (plain data: arrays of strings, small objects), so no view shares the cache's. */
function copyValues(part: Partial<ExtensionValues>): Partial<ExtensionValues> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(part)) out[k] = Array.isArray(v) ? [...(v as unknown[])] : v && typeof v === 'object' && !Buffer.isBuffer(v) ? { ...v } : v;
  return out as Partial<ExtensionValues>;
}

/**
 * The common shapes of the two key identifiers, read directly (one runs per
 * certificate built): the whole value is exactly one TLV with `tag`
 * (SubjectKeyIdentifier: OCTET STRING), or exactly SEQUENCE { [0] keyIdentifier }
 * (AuthorityKeyIdentifier as sekisho and most CAs write it). Anything else
 * is left to the schema parser (undefined).
 */
function plainKeyIdentifier(value: Buffer, tag: number): Buffer | undefined {
  if (value.length < 2 || value[0] !== tag || value[1]! >= 0x80) return undefined;
  const t = readTlv(value, 0);
  return t.end === value.length ? Buffer.from(value.subarray(t.start, t.end)) : undefined;
}

function plainAuthorityKeyIdentifier(value: Buffer): Buffer | undefined {
  if (value.length < 2 || value[0] !== TAG.SEQUENCE || value[1]! >= 0x80 || value[1]! + 2 !== value.length) return undefined;
  return plainKeyIdentifier(value.subarray(2), 0x80);
}

function readExtensionValue(view: ExtensionView, oid: string, value: Buffer): void {
  {
    switch (oid) {
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
        const san = Array.from(AsnConvert.parse(value, SubjectAlternativeName));
        view.subjectAltName = {
          dns: san.filter((g) => g.dNSName !== undefined).map((g) => g.dNSName!),
          ip: san.filter((g) => g.iPAddress !== undefined).map((g) => g.iPAddress!),
        };
        break;
      }
      case EXTENSION_OIDS.subjectKeyIdentifier:
        view.subjectKeyIdentifier = plainKeyIdentifier(value, TAG.OCTET_STRING) ?? Buffer.from(AsnConvert.parse(value, SubjectKeyIdentifier).buffer);
        break;
      case EXTENSION_OIDS.authorityKeyIdentifier: {
        const direct = plainAuthorityKeyIdentifier(value);
        if (direct) {
          view.authorityKeyIdentifier = direct;
          break;
        }
        const aki = AsnConvert.parse(value, AuthorityKeyIdentifier);
        if (aki.keyIdentifier) view.authorityKeyIdentifier = Buffer.from(aki.keyIdentifier.buffer);
        break;
      }
      case EXTENSION_OIDS.crlDistributionPoints:
        view.crlDistributionPoints = Array.from(AsnConvert.parse(value, CRLDistributionPoints)).flatMap((dp) =>
          (dp.distributionPoint?.fullName ?? []).flatMap((g) => (g.uniformResourceIdentifier ? [g.uniformResourceIdentifier] : [])),
        );
        break;
      case EXTENSION_OIDS.authorityInfoAccess: {
        const aia = Array.from(AsnConvert.parse(value, AuthorityInfoAccessSyntax));
        const urls = (m: string) => aia.filter((a) => a.accessMethod === m && a.accessLocation.uniformResourceIdentifier).map((a) => a.accessLocation.uniformResourceIdentifier!);
        view.ocspUrls = urls(id_ad_ocsp);
        view.caIssuersUrls = urls(id_ad_caIssuers);
        break;
      }
    }
  }
}

/** Splits a DER `Extensions` SEQUENCE into raw extensions. */
export function splitExtensions(der: Buffer, start = 0): RawExtension[] {
  const top = readTlv(der, start);
  return children(der, top).map((e) => {
    const parts = children(der, e);
    const id = parts[0];
    const last = parts[parts.length - 1];
    if (!id || id.tag !== TAG.OID || !last || last.tag !== TAG.OCTET_STRING || parts.length > 3) {
      throw new Error('malformed Extension');
    }
    const critical = parts.length === 3 && parts[1]!.tag === TAG.BOOLEAN && der[parts[1]!.start] !== 0;
    return { oid: decodeOid(contentBytes(der, id)), critical, value: contentBytes(der, last) };
  });
}
