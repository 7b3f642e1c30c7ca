/** What the agent counts, for /status (JSON) and /metrics (Prometheus text). */
export class AgentStats {
  readonly refusals = new Map<string, number>();
  connectionsOpen = 0;
  connectionsTotal = 0;
  requestsTotal = 0;
  renewalsTotal = 0;
  renewalFailuresTotal = 0;
  lastRenewal: { at: string; serial: string; notAfter: string } | undefined;
  lastRenewalError: { at: string; code: string; message: string; ja?: string } | undefined;

  refuse(reason: string): void {
    this.refusals.set(reason, (this.refusals.get(reason) ?? 0) + 1);
  }

  opened(): void {
    this.connectionsOpen++;
    this.connectionsTotal++;
  }

  closed(): void {
    this.connectionsOpen--;
  }
}
