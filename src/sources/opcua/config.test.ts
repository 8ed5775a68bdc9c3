import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../core/errors.js';
import { parseConfig } from '../../config/load.js';

function problems(endpoint: string): string[] {
  const yaml = `influx: { url: http://127.0.0.1:8086, database: x }\nbuffer: { dir: /tmp/pg/buffer }\nopcua:\n  endpoints:\n    - ${endpoint}\n`;
  try {
    const c = parseConfig(yaml, 'plant.yaml', {});
    expect(c.opcua.pkiDir).toBe('/tmp/pg/pki');
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.path}: ${p.message}`);
    throw err;
  }
  return [];
}

const OK = '{ name: cnc-01, url: "opc.tcp://127.0.0.1:4840", nodes: [{ nodeId: "nsu=urn:x;s=A.B", field: a }] }';

describe('opcua configuration', () => {
  it('accepts an endpoint and fills defaults (pki beside the buffer)', () => {
    expect(problems(OK)).toEqual([]);
  });

  it.each([
    ['a URL that is not opc.tcp', OK.replace('opc.tcp://127.0.0.1:4840', 'http://x'), /^opcua\.endpoints\[0\]\.url: expected an opc\.tcp:\/\/host:port URL/],
    ['neither nodes nor browse', '{ name: a, url: "opc.tcp://h:1" }', /^opcua\.endpoints\[0\]\.nodes: give at least one node, browse root or events entry/],
    ['events in poll mode', OK.replace('nodes:', 'mode: poll, events: [{}], nodes:'), /^opcua\.endpoints\[0\]\.events: events need a subscription/],
    ['an event field with an unknown alias', OK.replace('nodes:', 'events: [{ fields: ["cnc:AlarmIdentifier"] }], nodes:'), /events\[0\]\.fields\[0\]: unknown namespace alias "cnc"/],
    ['a malformed event field', OK.replace('nodes:', 'events: [{ fields: ["a//b"] }], nodes:'), /events\[0\]\.fields\[0\]: a field is a browse path below the event/],
    ['a severity out of range', OK.replace('nodes:', 'events: [{ minSeverity: 1001 }], nodes:'), /events\[0\]\.minSeverity/],
    ['a malformed node id', OK.replace('nsu=urn:x;s=A.B', 'Spindle.Speed'), /^opcua\.endpoints\[0\]\.nodes\[0\]\.nodeId: expected a node id/],
    ['nodeId and browsePath together', OK.replace('field: a', 'browsePath: "/1:A", field: a'), /nodes\[0\]: give exactly one of nodeId and browsePath/],
    ['a mode without a policy', OK.replace('nodes:', 'securityMode: SignAndEncrypt, nodes:'), /securityPolicy: securityMode SignAndEncrypt needs a securityPolicy other than None/],
    ['an unknown policy', OK.replace('nodes:', 'securityMode: Sign, securityPolicy: Basic512, nodes:'), /securityPolicy: .*Basic256Sha256/],
    ['a password over an unencrypted channel', OK.replace('nodes:', 'securityMode: None, auth: { type: username, username: u, password: p }, nodes:'), /auth: a password over a None channel is readable on the network/],
    ['a policy with securityMode auto', OK.replace('nodes:', 'securityPolicy: Basic256Sha256, nodes:'), /securityPolicy: securityMode auto chooses the policy too/],
    ['a username without password', OK.replace('nodes:', 'auth: { type: username, username: u }, nodes:'), /auth\.password: give password or passwordFile/],
    ['an unknown auth type', OK.replace('nodes:', 'auth: { type: kerberos }, nodes:'), /auth\.type/],
    ['an unknown key', OK.replace('nodes:', 'samplingRate: 5, nodes:'), /samplingRate: unknown key/],
    ['a field used twice', OK.replace('field: a }', 'field: a }, { nodeId: "i=2258", field: a }'), /nodes\[1\]\.field: field "a" is already used by nodes\[0\]/],
    ['a bad duration', OK.replace('nodes:', 'samplingInterval: fast, nodes:'), /samplingInterval: expected a duration/],
  ])('rejects %s with its path', (_what, endpoint, want) => {
    const p = problems(endpoint);
    expect(p.some((x) => want.test(x)), p.join('\n')).toBe(true);
  });

  it('rejects duplicate endpoint names, also against MQTT client names', () => {
    const yaml = `influx: { url: http://127.0.0.1:8086, database: x }\nopcua:\n  endpoints:\n    - ${OK}\n    - ${OK}\n`;
    expect(() => parseConfig(yaml, 'p.yaml', {})).toThrow(/opcua\.endpoints\[1\]\.name: duplicate endpoint name "cnc-01"/);
  });

  it('accepts an endpoint with events only, defaults filled', () => {
    expect(problems('{ name: a, url: "opc.tcp://h:1", events: [{ types: [AlarmConditionType] }] }')).toEqual([]);
  });

  it('allows a password over an unencrypted channel only when asked by name', () => {
    expect(problems(OK.replace('nodes:', 'auth: { type: username, username: u, password: p }, allowPasswordOverInsecureChannel: true, nodes:'))).toEqual([]);
  });
});
