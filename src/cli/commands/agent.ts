import { FacilityAgent, jsonLog, loadAgentConfig } from '../../agent/index.js';
import { JSON_OPTION, type Command } from '../command.js';
import { prompt } from '../secrets.js';

export const agentCommand: Command = {
  path: ['agent'],
  summary: 'run the facility agent: a loopback proxy and TCP forwards that carry local applications to the center over mutual TLS with the token-held credential, and renew it before expiry (docs/agent.md)',
  options: {
    config: { type: 'string', description: 'agent configuration (YAML, see docs/examples/agent.yaml)', valueName: 'FILE' },
    check: { type: 'boolean', description: 'check the configuration and exit (no token, no listeners)' },
    ...JSON_OPTION,
  },
  validators: [(v) => (v.config === undefined ? 'give --config FILE' : undefined)],
  async run(ctx) {
    const cfg = loadAgentConfig(ctx.values.config as string);
    if (ctx.values.check) {
      if (ctx.values.json) return ctx.json({ ok: true, gateway: cfg.center.gateway, token: cfg.credential.token.kind });
      ctx.out(`${ctx.values.config as string}: configuration OK`);
      return 0;
    }
    const log = jsonLog((line) => ctx.out(line.trimEnd()));
    const agent = await FacilityAgent.start(cfg, { env: ctx.env, isTTY: ctx.isTTY, prompt, log });
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off('SIGTERM', stop);
        process.off('SIGINT', stop);
        agent.stop().then(resolve, resolve);
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    });
    return 0;
  },
};
