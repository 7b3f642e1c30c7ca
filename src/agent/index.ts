export { loadAgentConfig, parseAgentConfig, parseDuration, isLoopback, type AgentConfig, type AgentToken, type PinSource, type HostPort } from './config.js';
