import type { LookupAddress } from 'node:dns';
import type { AgentToken, HostPort, PinSource } from '../config.js';

/** What the doctor checks: the center, how to trust it, and the facility's credential. */
export interface DoctorTarget {
  center: HostPort;
  /** Name checked in the center's certificate (default: the host). */
  serverName: string;
  /** SHA-256 of the root certificate (lower-case hex), from the notice letter. */
  rootThumbprint: string;
  /** The root certificate file, when the center does not send its root. */
  rootFile?: string;
  profile: 'high' | 'recommended';
  token?: AgentToken;
  pin?: PinSource;
  httpProxy?: URL;
  /** Injected for tests. */
  lookup?: (host: string) => Promise<LookupAddress[]>;
}
