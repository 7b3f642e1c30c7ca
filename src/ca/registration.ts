import { isIP } from 'node:net';
import type { KeyObject } from 'node:crypto';
import { badRequest, forbidden, notFound } from '../errors/index.js';
import type { NameAttribute } from '../pki/index.js';
import { CERTIFICATE_PROFILES, checkSubjectKey, issuanceNotBefore, parseFacilityNumber, type EndEntityProfileName } from '../policy/index.js';
import type { Facility, FacilityRepository } from '../store/index.js';
import type { CaConfig } from './config.js';
import type { IssuanceRequest } from './issuer.js';

const DAY_MS = 86_400_000;

export interface EndEntityOrder {
  profile: EndEntityProfileName;
  facilityNumber?: string;
  /** device: device name (CN); server: DNS names and IP addresses. */
  deviceName?: string;
  hosts?: string[];
  validityDays?: number;
  /** Renewal: the serial of the certificate this one replaces (recorded with the new serial). */
  renewedFrom?: string;
  /** The subject key; or instead `csr`, whose key is checked where it is parsed (the issuer, or its pool). */
  publicKey?: KeyObject;
  /** DER SubjectPublicKeyInfo of publicKey, when known (from a CSR). */
  spki?: Buffer;
  /** A CSR (PEM or DER) as received, not parsed yet. */
  csr?: Buffer;
  via: string;
  actor: string;
}

/** A device name as it goes into a device certificate's CN (and into an EST code made for the device). */
export function parseDeviceName(input: string | undefined): string {
  const name = (input ?? '').normalize('NFC').trim();
  if (!/^[\p{L}\p{N}][\p{L}\p{N} ._-]{0,63}$/u.test(name)) {
    throw badRequest('DEVICE_NAME_INVALID', 'a device certificate needs --device NAME (1–64 letters, digits, space, . _ -)');
  }
  return name;
}

/**
 * The registration side of the CA (Boulder's RA): decides whether a request
 * may be issued and what exactly goes into it. The subject comes from the
 * registry, never from the request.
 */
export class Registration {
  constructor(
    /** Registration only reads the registry. */
    private readonly facilities: Pick<FacilityRepository, 'get'>,
    private readonly config: CaConfig,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async activeFacility(numberInput: string): Promise<Facility> {
    const number = parseFacilityNumber(numberInput);
    const f = await this.facilities.get(number);
    if (!f) {
      throw notFound('FACILITY_UNKNOWN', `facility ${number} is not registered; add it first with: sekisho facility add --code ${number} --name …`, {
        ja: `医療機関 ${number} は登録されていません。`,
      });
    }
    if (f.status !== 'active') {
      throw forbidden('FACILITY_SUSPENDED', `facility ${number} is suspended; resume it (sekisho facility resume ${number}) before issuing`, {
        ja: `医療機関 ${number} は利用停止中です。運営主体にお問い合わせください。`,
      });
    }
    return f;
  }

  async decide(order: EndEntityOrder): Promise<IssuanceRequest> {
    const profile = CERTIFICATE_PROFILES[order.profile];
    if ((order.publicKey === undefined) === (order.csr === undefined)) throw badRequest('SUBJECT_KEY_MISSING', 'an issuance needs exactly one of a public key or a CSR');
    // The key as it will be written (a CSR's own DER): its form matters, not only what Node makes of it.
    if (order.publicKey) checkSubjectKey(order.spki ?? order.publicKey);
    const maxDays = this.config.validityDays[order.profile];
    const days = order.validityDays ?? maxDays;
    if (!Number.isInteger(days) || days < 1 || days > maxDays) {
      throw badRequest('VALIDITY_OUT_OF_RANGE', `validity must be 1–${maxDays} days for a ${order.profile} certificate (got ${days})`);
    }
    const notBefore = issuanceNotBefore(this.now());
    const notAfter = new Date(notBefore.getTime() + days * DAY_MS);
    const base = { profile, ...(order.publicKey ? { publicKey: order.publicKey } : {}), ...(order.csr ? { csr: order.csr } : {}), ...(order.spki ? { spki: order.spki } : {}), ...(order.renewedFrom ? { renewedFrom: order.renewedFrom } : {}), notBefore, notAfter, via: order.via, actor: order.actor };
    const org = this.config.organization;
    switch (order.profile) {
      case 'facility': {
        const f = await this.activeFacility(order.facilityNumber ?? '');
        return { ...base, facilityNumber: f.number, subject: [{ type: 'C', value: 'JP' }, { type: 'O', value: f.name }, { type: 'CN', value: f.number }] };
      }
      case 'device': {
        const f = await this.activeFacility(order.facilityNumber ?? '');
        const name = parseDeviceName(order.deviceName);
        const subject: NameAttribute[] = [{ type: 'C', value: 'JP' }, { type: 'O', value: f.name }, { type: 'OU', value: f.number }, { type: 'CN', value: name }];
        return { ...base, facilityNumber: f.number, subject };
      }
      case 'server': {
        const hosts = order.hosts ?? [];
        if (hosts.length === 0) throw badRequest('SERVER_NAMES_MISSING', 'a server certificate needs at least one --host DNS name or IP address');
        const dns: string[] = [];
        const ip: string[] = [];
        for (const h of hosts) {
          if (isIP(h) && !h.includes('%')) {
            if (!ip.includes(h)) ip.push(h);
            continue;
          }
          const name = h.toLowerCase();
          const labels = name.split('.');
          const valid =
            name.length <= 253 &&
            labels.every((l, i) => (i === 0 && l === '*' && labels.length >= 3) || /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(l)) &&
            !/^\d+$/.test(labels[labels.length - 1]!);
          if (!valid) throw badRequest('SERVER_NAME_INVALID', `"${h}" is neither a DNS name (a wildcard only as the whole leftmost label, under at least two labels) nor an IP address`);
          if (!dns.includes(name)) dns.push(name);
        }
        return { ...base, subject: [{ type: 'C', value: 'JP' }, { type: 'O', value: org }, { type: 'CN', value: dns[0] ?? ip[0]! }], subjectAltName: { dns, ip } };
      }
    }
  }
}
