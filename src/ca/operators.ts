import { badRequest } from '../errors/index.js';
import { OPERATOR_ROLES, type OperatorRecord, type OperatorRole } from '../store/index.js';

/**
 * Operators of the web console: people of the operator's office, each signed
 * in by one client certificate of the `operator` profile (C=JP, O=<operator>,
 * OU=operator, CN=<name>). The name is a login name: a letter first, so it can
 * never read as a 10-digit facility number (the gateway maps those).
 */
export const OPERATOR_NAME = /^[a-z][a-z0-9._-]{0,31}$/;

export function parseOperatorName(input: string): string {
  const name = input.trim();
  if (!OPERATOR_NAME.test(name)) {
    throw badRequest('OPERATOR_NAME_INVALID', `"${name.slice(0, 40)}" is not an operator name: 1–32 of a-z 0-9 . _ -, starting with a letter`, {
      ja: 'オペレーター名は英小文字で始まる32文字以内（a-z 0-9 . _ -）で入力してください。',
    });
  }
  return name;
}

export function parseOperatorRole(input: string): OperatorRole {
  if (!(OPERATOR_ROLES as readonly string[]).includes(input)) throw badRequest('OPERATOR_ROLE_INVALID', `"${input.slice(0, 20)}" is not a role; use ${OPERATOR_ROLES.join(', ')}`);
  return input as OperatorRole;
}

/** The audit actor of an operator acting through the console: `operator:<name>/<serial>`. */
export function operatorActor(o: Pick<OperatorRecord, 'name' | 'certificateSerial'>): string {
  return `operator:${o.name}/${o.certificateSerial}`;
}
