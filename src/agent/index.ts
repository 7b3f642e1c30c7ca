export { loadAgentConfig, parseAgentConfig, parseDuration, isLoopback, type AgentConfig, type AgentToken, type PinSource, type HostPort } from './config.js';
export { FacilityAgent, type FacilityAgentOptions } from './facility-agent.js';
export { jsonLog, type AgentLog } from './log.js';
export { readPin, type PinContext } from './pin.js';
export { trustedRoot, centerTlsOptions } from './center-tls.js';
export { agentErrors, refusalMessage } from './messages.js';
