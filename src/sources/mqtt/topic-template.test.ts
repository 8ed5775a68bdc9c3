import { describe, expect, it } from 'vitest';
import { parseTopicTemplate } from './topic-template.js';

describe('topic templates', () => {
  it('turns placeholders into tags and builds the subscription filter', () => {
    const t = parseTopicTemplate('factory/{site}/{line}/{machine}/telemetry');
    expect(t.filter).toBe('factory/+/+/+/telemetry');
    expect(t.tagNames).toEqual(['site', 'line', 'machine']);
    expect(t.match('factory/shenyang/l1/cnc-7/telemetry')).toEqual({ site: 'shenyang', line: 'l1', machine: 'cnc-7' });
    expect(t.match('factory/shenyang/l1/cnc-7/status')).toBeNull();
    expect(t.match('factory/shenyang/l1/telemetry')).toBeNull();
    expect(t.match('factory/shenyang/l1/cnc-7/telemetry/extra')).toBeNull();
  });

  it('supports + (ignored level) and a final # (any rest)', () => {
    const t = parseTopicTemplate('plant/+/{machine}/#');
    expect(t.filter).toBe('plant/+/+/#');
    expect(t.match('plant/a/m1')).toEqual({ machine: 'm1' });
    expect(t.match('plant/a/m1/x/y')).toEqual({ machine: 'm1' });
    expect(t.match('other/a/m1')).toBeNull();
    expect(parseTopicTemplate('#').match('$SYS/broker')).toBeNull();
  });

  it('never makes an empty level a tag', () => {
    expect(parseTopicTemplate('f/{site}/t').match('f//t')).toBeNull();
  });

  it.each([
    ['', /empty/],
    ['a/#/b', /"#" must be the last level/],
    ['a/{b', /must be \{name\}/],
    ['a/{}/c', /must be \{name\}/],
    ['a/{1x}/c', /must be \{name\}/],
    ['a/{x}/{x}', /appears twice/],
    ['a/b+c', /mixes text/],
  ])('refuses %j', (template, msg) => {
    expect(() => parseTopicTemplate(template)).toThrow(msg);
  });
});
