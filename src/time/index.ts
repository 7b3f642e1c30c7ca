export { sntpQuery, toNtp, fromNtp, type SntpReading } from './sntp.js';
export { ClockCheck, type ClockSource, type ClockReading, type ClockCheckOptions } from './clock-check.js';
export { parseTimeSetting, TIME_DEFAULTS, type TimeSetting } from './setting.js';
