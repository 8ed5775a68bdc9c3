import { describe, expect, it } from 'vitest';
import { expandRule, filterCovers, filterProblem, mayPublish, maySubscribe, topicMatches } from './acl.js';

describe('MQTT ACL rules', () => {
  it('matches topics against filters as MQTT does', () => {
    expect(topicMatches('factory/+/+/press-01/#', 'factory/a/l1/press-01/telemetry')).toBe(true);
    expect(topicMatches('factory/+/+/press-01/#', 'factory/a/l1/press-01')).toBe(true); // # includes the parent level
    expect(topicMatches('factory/+/+/press-01/#', 'factory/a/l1/press-02/telemetry')).toBe(false);
    expect(topicMatches('factory/+', 'factory/a/b')).toBe(false);
    expect(topicMatches('#', '$SYS/broker')).toBe(false); // $ topics need an explicit rule
  });

  it('a subscription is allowed only when the rule covers everything it can receive', () => {
    expect(filterCovers('factory/#', 'factory/+/x')).toBe(true);
    expect(filterCovers('factory/+/x', 'factory/+/x')).toBe(true);
    expect(filterCovers('factory/+/x', 'factory/#')).toBe(false);
    expect(filterCovers('factory/a/x', 'factory/+/x')).toBe(false);
    expect(filterCovers('factory/+', 'factory/a/b')).toBe(false);
  });

  it('fills %c and %u, and never with an identity holding wildcards or slashes', () => {
    expect(expandRule('factory/+/+/%u/#', { clientId: 'c', username: 'press-01' })).toBe('factory/+/+/press-01/#');
    expect(expandRule('dev/%c/#', { clientId: '#' })).toBeUndefined();
    expect(expandRule('dev/%c/#', { clientId: 'a/b' })).toBeUndefined();
    expect(expandRule('dev/%u/#', { clientId: 'x' })).toBeUndefined(); // anonymous: no username
    expect(mayPublish(['dev/%c/#'], { clientId: '+' }, 'dev/x/t')).toBe(false);
    expect(mayPublish(['dev/%c/#'], { clientId: 'x' }, 'dev/x/t')).toBe(true);
    expect(maySubscribe(['cmd/%u/#'], { clientId: 'x', username: 'u1' }, 'cmd/u1/+')).toBe(true);
    expect(maySubscribe(['cmd/%u/#'], { clientId: 'x', username: 'u1' }, 'cmd/#')).toBe(false);
  });

  it('names what is wrong with a filter', () => {
    expect(filterProblem('a/#/b')).toMatch(/'#' must be a whole level and the last one/);
    expect(filterProblem('a/b+')).toMatch(/'\+' must be a whole level/);
    expect(filterProblem('')).toBe('empty topic filter');
    expect(filterProblem('factory/+/+/%u/#')).toBeUndefined();
  });
});
