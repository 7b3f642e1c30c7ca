export { loadAgentConfig, parseAgentConfig, parseDuration, isLoopback, type AgentConfig, type AgentToken, type PinSource, type HostPort } from './config.js';
export { FacilityAgent, type FacilityAgentOptions } from './facility-agent.js';
export { jsonLog, type AgentLog } from './log.js';
export { readPin, type PinContext } from './pin.js';
export { trustedRoot, centerTlsOptions } from './center-tls.js';
export { agentErrors, refusalMessage } from './messages.js';
export { runDoctor, DOCTOR_STEPS, CLOCK_FAIL_MS, CLOCK_WARN_MS, type DoctorReport, type DoctorOptions, type DoctorTarget, type StepResult, type StepStatus, type DoctorStepId, type Bilingual } from './doctor.js';
