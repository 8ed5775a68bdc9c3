import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../config/load.js';
import { configProblems } from '../../../tests/helpers/config.js';

const base = (sparkplug: string, mqtt = 'mqtt: { broker: { listen: 127.0.0.1:1883, allowAnonymous: true } }') => `
influx: { url: http://127.0.0.1:8086, database: f }
${mqtt}
sparkplug: ${sparkplug}
buffer: { dir: /var/lib/plantgate/buffer }
`;

const problems = configProblems;

describe('sparkplug configuration', () => {
  it('defaults: active host, state file beside the buffer, no JSON route needed', () => {
    const c = parseConfig(base('{}'), 'plant.yaml', {});
    expect(c.sparkplug).toMatchObject({ mode: 'active', hostId: 'plantgate', groups: [], reorderTimeout: 2000, stateFile: '/var/lib/plantgate/sparkplug-state.json' });
  });
  it('every mistake is named with its path', () => {
    expect(problems(base('{ mode: master }'))).toEqual(['sparkplug.mode: Invalid option: expected one of "passive"|"active"|"primary"']);
    expect(problems(base('{ hostId: "a/b" }'))).toEqual(['sparkplug.hostId: must not contain + / or #']);
    expect(problems(base('{ groups: ["plant+1"] }'))).toEqual(['sparkplug.groups[0]: must not contain + / or #']);
    expect(problems(base('{ reorderTimeout: soon }'))).toEqual(['sparkplug.reorderTimeout: expected a duration such as 500ms, 5s, 2m or 1h, got "soon"']);
    expect(problems(base('{ metricPath: { levels: 1 } }'))).toEqual(['sparkplug.metricPath.levels: unknown key; expected one of separator, measurementLevels']);
    expect(problems(base('{ hostid: x }'))).toEqual(['sparkplug.hostid: unknown key; did you mean hostId?']);
    expect(problems(base('{}', 'mqtt: {}'))).toEqual(['sparkplug: the Sparkplug host needs the embedded broker (mqtt.broker) or at least one MQTT client (mqtt.clients)']);
  });
});
