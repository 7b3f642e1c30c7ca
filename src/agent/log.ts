/** The agent's log: one JSON object a line on stdout (journald keeps it). Never a PIN, a key or a request body in a field. */
export type AgentLogLevel = 'info' | 'warn' | 'error';
export type AgentLog = (level: AgentLogLevel, msg: string, fields?: Record<string, unknown>) => void;

export function jsonLog(write: (line: string) => void = (l) => process.stdout.write(l), now: () => Date = () => new Date()): AgentLog {
  return (level, msg, fields = {}) => write(`${JSON.stringify({ time: now().toISOString(), level, msg, ...fields })}\n`);
}
