/**
 * One diagnosis step's result, as `sekisho doctor` prints it and as its JSON
 * gives it to a vendor's support tool. Step ids and codes are stable (listed
 * in docs/doctor.md); messages and fixes come in Japanese and English.
 * Nothing in a result may carry a PIN or key material: details hold only
 * names, numbers, thumbprints and certificate fields.
 */
export const DOCTOR_STEPS = ['dns', 'tcp', 'tls', 'chain', 'token', 'client-certificate', 'revocation', 'clock'] as const;
export type DoctorStepId = (typeof DOCTOR_STEPS)[number];

export type StepStatus = 'ok' | 'warn' | 'fail' | 'skipped';

export interface Bilingual {
  ja: string;
  en: string;
}

export interface StepResult {
  step: DoctorStepId;
  status: StepStatus;
  /** Stable code, e.g. TLS_VERSION_TOO_OLD. */
  code: string;
  message: Bilingual;
  /** What to do; absent when nothing needs doing. */
  fix?: Bilingual;
  /** Facts behind the verdict (addresses, versions, thumbprints, dates). */
  details?: Record<string, unknown>;
}

export const ok = (step: DoctorStepId, code: string, message: Bilingual, details?: Record<string, unknown>): StepResult => ({ step, status: 'ok', code, message, ...(details ? { details } : {}) });
export const warn = (step: DoctorStepId, code: string, message: Bilingual, fix: Bilingual, details?: Record<string, unknown>): StepResult => ({ step, status: 'warn', code, message, fix, ...(details ? { details } : {}) });
export const fail = (step: DoctorStepId, code: string, message: Bilingual, fix: Bilingual, details?: Record<string, unknown>): StepResult => ({ step, status: 'fail', code, message, fix, ...(details ? { details } : {}) });

/** A step that did not run because one it needs failed. */
export const skipped = (step: DoctorStepId, because: DoctorStepId, why?: Bilingual): StepResult => ({
  step,
  status: 'skipped',
  code: 'SKIPPED_EARLIER_FAILURE',
  message: why ?? { ja: `前の手順（${because}）が失敗したため、確認できませんでした。`, en: `not checked: the earlier step "${because}" failed` },
  details: { because },
});
