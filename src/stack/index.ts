/**
 * Whole centers in one process, for `sekisho serve` (the gateway beside the
 * CA's HTTP endpoints) and `sekisho up` (the same, plus a demo CA, facility,
 * notice and upstream). The parts stay independent; this only wires them.
 */
export { startServeStack, serverNames, urlHost, parseListenAddress, untilStopped, type ServeStack, type ServeStackOptions, type ServeSummary } from './serve-stack.js';
export { startDemoUpstream, greeting, callerOf, type DemoUpstream, type Caller } from './demo-upstream.js';
export { prepareDemoCenter, demoRevocationUrl, revocationListenOf, demoFiles, DEMO_FACILITY, DEMO_ORGANIZATION, type DemoCenter, type DemoCenterOptions } from './demo-center.js';
