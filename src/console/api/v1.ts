import type { ConsoleRoutes } from '../app.js';
import { parseRevocationReason } from '../../pki/index.js';
import { badRequest } from '../../errors/index.js';
import { facilityOrThrow, parseFacilityStatus, searchFacilities } from '../views/facilities.js';
import { certificateJson, findCertificates, parseCertificateQuery } from '../views/certificates.js';
import { createNotice, parseNoticeDays } from '../views/notices.js';
import { may } from '../roles.js';

const text = (v: unknown, field: string): string => {
  if (typeof v !== 'string') throw badRequest('FIELD_INVALID', `"${field}" must be a string`);
  return v;
};
const optionalText = (v: unknown, field: string): string | undefined => (v === undefined || v === null || v === '' ? undefined : text(v, field));

/**
 * The JSON API (/api/v1): the same operations as the views, the same
 * permissions (roles.ts through the registrar) and the same CA calls.
 *
 * | Method | Path | Permission |
 * |---|---|---|
 * | GET | /me | (signed in) |
 * | GET | /facilities?q=&status= | facilities.read |
 * | POST | /facilities `{number, name, address?, contact?}` | facilities.write |
 * | GET | /facilities/{number} (with certificates and notices as the role may read) | facilities.read |
 * | POST | /facilities/{number}/suspend, /resume | facilities.write |
 * | GET | /certificates?status=&profile=&expiresBefore=&facility= | certificates.read |
 * | POST | /certificates/{serial}/revoke `{reason}` | certificates.revoke |
 * | GET | /notices?facility= | notices.read |
 * | POST | /notices `{facility, days?}` → IDs, shown this once | notices.write |
 * | POST | /notices/{id}/revoke, /unlock | notices.write |
 * | GET | /operators | operators.manage |
 * | POST | /operators/{name}/revoke | operators.manage |
 */
export function registerApi(r: ConsoleRoutes): void {
  r.api('GET', '/facilities', 'facilities.read', async (c) => c.json(searchFacilities(await r.deps.ca.listFacilities(), (c.req.query('q') ?? '').slice(0, 64), parseFacilityStatus(c.req.query('status')))));
  r.api('POST', '/facilities', 'facilities.write', async (c, b) => {
    const address = optionalText(b.address, 'address');
    const contact = optionalText(b.contact, 'contact');
    const f = await r.deps.ca.addFacility({ number: text(b.number, 'number'), name: text(b.name, 'name'), ...(address ? { address } : {}), ...(contact ? { contact } : {}) }, c.get('operator').actor);
    return c.json(f, 201);
  });
  r.api('GET', '/facilities/:number', 'facilities.read', async (c) => {
    const f = await facilityOrThrow(r, c.req.param('number'));
    const role = c.get('operator').role;
    const certificates = may(role, 'certificates.read') ? (await r.deps.ca.listCertificates({ facilityNumber: f.number })).map(certificateJson) : undefined;
    const notices = may(role, 'notices.read') ? await r.deps.ca.notices.list({ facilityNumber: f.number }) : undefined;
    return c.json({ ...f, ...(certificates ? { certificates } : {}), ...(notices ? { notices } : {}) });
  });
  for (const word of ['suspend', 'resume'] as const) {
    r.api('POST', `/facilities/:number/${word}`, 'facilities.write', async (c) => c.json(await r.deps.ca.setFacilityStatus(c.req.param('number') ?? '', word === 'suspend' ? 'suspended' : 'active', c.get('operator').actor)));
  }

  r.api('GET', '/certificates', 'certificates.read', async (c) => c.json((await findCertificates(r, parseCertificateQuery((n) => c.req.query(n)))).map(certificateJson)));
  r.api('POST', '/certificates/:serial/revoke', 'certificates.revoke', async (c, b) => c.json(certificateJson(await r.deps.ca.revoke(c.req.param('serial') ?? '', parseRevocationReason(text(b.reason, 'reason')), c.get('operator').actor))));

  r.api('GET', '/notices', 'notices.read', async (c) => {
    const facility = c.req.query('facility');
    return c.json(await r.deps.ca.notices.list(facility ? { facilityNumber: facility } : {}));
  });
  r.api('POST', '/notices', 'notices.write', async (c, b) => {
    const n = await createNotice(r, c, text(b.facility, 'facility'), parseNoticeDays(b.days));
    return c.json({ id: n.id, facility: { number: n.facility.number, name: n.facility.name }, requestId: n.requestId, referenceId: n.referenceId, expiresAt: n.expiresAt, portalUrl: r.deps.portalUrl }, 201);
  });
  for (const word of ['revoke', 'unlock'] as const) {
    r.api('POST', `/notices/:id/${word}`, 'notices.write', async (c) => c.json(word === 'revoke' ? await r.deps.ca.notices.revoke(c.req.param('id') ?? '', c.get('operator').actor) : await r.deps.ca.notices.unlock(c.req.param('id') ?? '', c.get('operator').actor)));
  }

  r.api('GET', '/operators', 'operators.manage', async (c) => c.json(await r.deps.ca.listOperators()));
  r.api('POST', '/operators/:name/revoke', 'operators.manage', async (c) => c.json(await r.deps.ca.revokeOperator(c.req.param('name') ?? '', c.get('operator').actor)));
}
