/** Structured JSON logs, one object per line (to stderr by default, so stdout stays for --json output). Never pass secrets in fields. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void;
  enabled(level: LogLevel): boolean;
}

export function jsonLogger(min: LogLevel = 'info', write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  return {
    enabled: (level) => RANK[level] >= RANK[min],
    log(level, msg, fields = {}) {
      if (RANK[level] < RANK[min]) return;
      write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
    },
  };
}

export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];
