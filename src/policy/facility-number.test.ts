import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkDigit, parseFacilityNumber } from './facility-number.js';
import { SekishoError } from '../errors/index.js';

test('the worked example 0110113719 (Hokkaido, 医科) is valid', () => {
  assert.equal(parseFacilityNumber('0110113719'), '0110113719');
  assert.equal(checkDigit('011011371'), 9);
});

const refused: [string, string, string][] = [
  ['too short', '011011371', 'FACILITY_NUMBER_FORMAT'],
  ['letters', '01101137a9', 'FACILITY_NUMBER_FORMAT'],
  ['full-width digits', '０１１０１１３７１９', 'FACILITY_NUMBER_FORMAT'],
  ['prefecture 00', '0010113719', 'FACILITY_NUMBER_PREFECTURE'],
  ['prefecture 48', '4810113719', 'FACILITY_NUMBER_PREFECTURE'],
  ['score table 2', '0120113719', 'FACILITY_NUMBER_TABLE'],
  ['wrong check digit', '0110113718', 'FACILITY_NUMBER_CHECK_DIGIT'],
];
for (const [name, input, code] of refused) {
  test(`refuses a facility number with ${name}`, () => {
    assert.throws(() => parseFacilityNumber(input), (e: unknown) => e instanceof SekishoError && e.code === code && e.kind === 'malformed' && Boolean(e.ja));
  });
}

test('every single-digit typo in the 医療機関コード part is caught by the check digit', () => {
  const good = '1310512345'.slice(0, 9);
  const valid = good + String(checkDigit(good));
  assert.doesNotThrow(() => parseFacilityNumber(valid));
  for (let pos = 3; pos < 9; pos++) {
    for (let d = 0; d <= 9; d++) {
      if (String(d) === valid[pos]) continue;
      const typo = valid.slice(0, pos) + d + valid.slice(pos + 1);
      assert.throws(() => parseFacilityNumber(typo), /check digit/, typo);
    }
  }
});

test('dental (3), pharmacy (4) and home-nursing (6) tables are accepted', () => {
  for (const table of ['3', '4', '6']) {
    const nine = `27${table}123456`;
    assert.doesNotThrow(() => parseFacilityNumber(nine + checkDigit(nine)));
  }
});
