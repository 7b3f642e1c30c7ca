export { accessReview, buildReview, parseAccessFilter, accessCsvRows, ACCESS_CSV_HEADER, type AccessReview, type AccessRow, type AccessReviewFilter, type ReviewOutcome } from './access-review.js';
export { accessReviewHtml } from './access-html.js';
export { csvCell, csvDocument, type CsvCell } from './csv.js';
export { ReportZone, nextDay } from './zone.js';
export { migrationReadiness, buildReadiness, parseMigrationFilter, migrationCsvRows, migrationText, MIGRATION_CSV_HEADER, type MigrationReadiness, type MigrationFilter, type FacilityReadiness, type FacilityStanding, type ReadinessInput } from './migration-readiness.js';
export { migrationReadinessHtml } from './migration-html.js';
export { refusalSummary, buildRefusalSummary, refusalText, type RefusalSummary } from './refusals.js';
export { parseAuditSearch, type AuditSearchInput } from './audit-search.js';
