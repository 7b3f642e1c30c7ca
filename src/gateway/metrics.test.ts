import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayMetrics } from './metrics.js';

describe('gateway metrics: label values', () => {
  test('a backslash, a double quote and a newline in a label value are escaped (Prometheus text format 0.0.4); plain values are kept as they are and count in one series', () => {
    const m = new GatewayMetrics();
    m.handshakes.add({ listener: 'http', outcome: 'accepted', reason: '' });
    m.handshakes.add({ listener: 'http', outcome: 'accepted', reason: '' });
    m.exceptionUse.add({ facility: 'a\\b"c\nd', rule: 'SHA1_SIGNATURE' });
    const text = m.render();
    assert.match(text, /^sekisho_gateway_handshakes_total\{listener="http",outcome="accepted",reason=""\} 2$/m);
    assert.ok(text.includes('sekisho_gateway_policy_exception_uses_total{facility="a\\\\b\\"c\\nd",rule="SHA1_SIGNATURE"} 1'), text);
  });
});
