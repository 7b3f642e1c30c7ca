import type { Check } from '../check.js';
import { preferredProtocols, protocolVersions } from './protocols.js';
import { serverOrder, tls12Suites, tls13Suites } from './cipher-suites.js';
import { keyExchange } from './key-exchange.js';
import { certificateKeys, certificateName, certificateObserved, certificateSignatures, certificateValidity, chainComplete, ocspStapling } from './certificate.js';
import { clientAuthentication } from './client-auth.js';
import { compression, fallbackScsv, hsts, secureRenegotiation } from './hygiene.js';

/** Every check, in report order. */
export const CHECKS: readonly Check[] = [
  protocolVersions,
  preferredProtocols,
  tls12Suites,
  tls13Suites,
  serverOrder,
  keyExchange,
  certificateObserved,
  certificateSignatures,
  certificateKeys,
  certificateValidity,
  certificateName,
  chainComplete,
  ocspStapling,
  clientAuthentication,
  secureRenegotiation,
  compression,
  fallbackScsv,
  hsts,
];
export { classifySuite } from './cipher-suites.js';
