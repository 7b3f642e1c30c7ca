import type { Command } from './command.js';
import { initCommand } from './commands/init.js';
import { caChainCommand } from './commands/ca.js';
import { operatorAddCommand, operatorListCommand, operatorRevokeCommand } from './commands/operator.js';
import { facilityAddCommand, facilityListCommand, facilityResumeCommand, facilitySuspendCommand } from './commands/facility.js';
import { certIssueCommand, certListCommand, certRevokeCommand } from './commands/cert.js';
import { certBulkCommand } from './commands/bulk.js';
import { crlCommand } from './commands/crl.js';
import { auditCheckpointCommand, auditListCommand, auditVerifyCommand } from './commands/audit.js';
import { scanCommand } from './commands/scan.js';
import { doctorCommand } from './commands/doctor.js';
import { gatewayCommand } from './commands/gateway.js';
import { TOKEN_COMMANDS } from './commands/token.js';
import { estCodeCreateCommand, noticeCreateCommand, noticeListCommand, noticeRevokeCommand, noticeUnlockCommand } from './commands/notice.js';
import { enrollCommand } from './commands/enroll.js';
import { serveCommand } from './commands/serve.js';
import { upCommand } from './commands/up.js';
import { reportAccessCommand, reportMigrationCommand, reportRefusalsCommand } from './commands/report.js';
import { agentCommand } from './commands/agent.js';
import { dbRolesCommand } from './commands/db.js';

/** Every command, in the order `sekisho --help` lists them. */
export const COMMANDS: readonly Command[] = [
  upCommand,
  initCommand,
  caChainCommand,
  facilityAddCommand,
  facilityListCommand,
  facilitySuspendCommand,
  facilityResumeCommand,
  operatorAddCommand,
  operatorListCommand,
  operatorRevokeCommand,
  certIssueCommand,
  certBulkCommand,
  certListCommand,
  certRevokeCommand,
  crlCommand,
  noticeCreateCommand,
  noticeListCommand,
  noticeRevokeCommand,
  noticeUnlockCommand,
  estCodeCreateCommand,
  enrollCommand,
  auditVerifyCommand,
  auditCheckpointCommand,
  auditListCommand,
  dbRolesCommand,
  reportAccessCommand,
  reportMigrationCommand,
  reportRefusalsCommand,
  scanCommand,
  doctorCommand,
  gatewayCommand,
  serveCommand,
  agentCommand,
  ...TOKEN_COMMANDS,
];
