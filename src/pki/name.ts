import { children, contentBytes, decodeOid, oid as derOid, readTlv, sequence, set, tlv, TAG } from './der.js';

/** Attribute types sekisho writes and names (RFC 5280 §4.1.2.4, X.520). */
export const NAME_ATTRIBUTE_OIDS = {
  C: '2.5.4.6',
  ST: '2.5.4.8',
  L: '2.5.4.7',
  O: '2.5.4.10',
  OU: '2.5.4.11',
  CN: '2.5.4.3',
  serialNumber: '2.5.4.5',
  organizationIdentifier: '2.5.4.97',
} as const;
export type NameAttributeType = keyof typeof NAME_ATTRIBUTE_OIDS;

const SHORT_BY_OID = new Map<string, string>(Object.entries(NAME_ATTRIBUTE_OIDS).map(([k, v]) => [v, k]));

export interface NameAttribute {
  /** Short name (C, O, CN, …) or the dotted OID for types sekisho does not name. */
  type: string;
  value: string;
}

/**
 * Encodes a distinguished name, one attribute per RDN, in the order given.
 * C and serialNumber are PrintableString (X.520 requires it); everything else
 * UTF8String (RFC 5280 §4.1.2.6), so Japanese facility names survive.
 */
export function encodeName(attributes: readonly NameAttribute[]): Buffer {
  return sequence(
    ...attributes.map((a) => {
      const id = (NAME_ATTRIBUTE_OIDS as Record<string, string>)[a.type] ?? a.type;
      const printable = id === NAME_ATTRIBUTE_OIDS.C || id === NAME_ATTRIBUTE_OIDS.serialNumber;
      if (printable && !/^[A-Za-z0-9 '()+,\-./:=?]*$/.test(a.value)) throw new Error(`${a.type} must be a PrintableString`);
      return set(sequence(derOid(id), tlv(printable ? 0x13 : 0x0c, Buffer.from(a.value, printable ? 'latin1' : 'utf8'))));
    }),
  );
}

const STRING_DECODERS: Record<number, (b: Buffer) => string> = {
  0x0c: (b) => b.toString('utf8'), // UTF8String
  0x13: (b) => b.toString('latin1'), // PrintableString
  0x16: (b) => b.toString('latin1'), // IA5String
  0x14: (b) => b.toString('latin1'), // TeletexString (as Latin-1, like OpenSSL)
  0x1e: (b) => Buffer.from(b).swap16().toString('utf16le'), // BMPString
  0x1c: (b) => String.fromCodePoint(...Array.from({ length: b.length / 4 }, (_, i) => b.readUInt32BE(i * 4))), // UniversalString
};

/**
 * Decodes a DER Name linearly.
 * ```asn1
 * Name ::= SEQUENCE OF SET OF SEQUENCE { type OBJECT IDENTIFIER, value ANY }
 * ```
 */
export function decodeName(der: Buffer): NameAttribute[] {
  const out: NameAttribute[] = [];
  for (const rdn of children(der, readTlv(der, 0))) {
    for (const atv of children(der, rdn)) {
      const [type, value] = children(der, atv);
      if (!type || type.tag !== TAG.OID || !value) throw new Error('malformed AttributeTypeAndValue');
      const oid = decodeOid(contentBytes(der, type));
      const decode = STRING_DECODERS[value.tag];
      if (decode && value.tag === 0x1e && (value.end - value.start) % 2) throw new Error('odd BMPString');
      out.push({ type: SHORT_BY_OID.get(oid) ?? oid, value: decode ? decode(contentBytes(der, value)) : `#${der.subarray(value.offset, value.end).toString('hex')}` });
    }
  }
  return out;
}

/** "C=JP, O=はこだてクリニック, CN=0110113719" — for people, not for comparison. */
export function formatName(attributes: readonly NameAttribute[]): string {
  return attributes.map((a) => `${a.type}=${a.value}`).join(', ');
}

export function nameValue(attributes: readonly NameAttribute[], type: NameAttributeType): string | undefined {
  return attributes.find((a) => a.type === type)?.value;
}
