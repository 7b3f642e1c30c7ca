/**
 * Which incoming header names are stripped (regression: `X_Sekisho_Facility_Number`
 * and the like reached CGI/WSGI upstreams as the real identity variable).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSpoofable } from './identity-headers.js';

const stripped = [
  'x-sekisho-facility-number', 'X-Sekisho-Facility-Number', 'X_Sekisho_Facility_Number', 'x_sekisho-facility_number',
  'x.sekisho.facility.number', 'X_SEKISHO_ANYTHING', 'client-cert', 'Client_Cert', 'client_cert_chain', 'CLIENT-CERT-CHAIN',
  'forwarded', 'Forwarded', 'x-forwarded-for', 'X_Forwarded_For', 'x_forwarded_proto', 'X_Forwarded_Host', 'x-real-ip', 'X_Real_IP',
  'x_ssl_client_verify', 'ssl_client_s_dn', 'X_Client_Cert',
  // httpoxy: CGI's HTTP_PROXY, which HTTP client libraries take as their proxy.
  'proxy', 'Proxy', 'PROXY',
];
const kept = ['x_innocent_header', 'accept', 'user_agent', 'x-sekisho', 'client', 'client-certificate-hint', 'forwarded-by', 'x-forwarded', 'real-ip', 'proxy-status', 'x-proxy'];

for (const name of stripped) test(`stripped: ${name}`, () => assert.equal(isSpoofable(name), true));
for (const name of kept) test(`kept: ${name}`, () => assert.equal(isSpoofable(name), false));
