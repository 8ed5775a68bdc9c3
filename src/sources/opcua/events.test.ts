import { describe, expect, it } from 'vitest';
import { fieldName, severityBand } from './events.js';

describe('OPC UA events', () => {
  it('groups severities into Part 9 bands at their edges', () => {
    expect([1, 200, 201, 400, 401, 600, 601, 800, 801, 1000].map(severityBand)).toEqual(['low', 'low', 'medium_low', 'medium_low', 'medium', 'medium', 'medium_high', 'medium_high', 'high', 'high']);
  });

  it('names a selected field by its browse names, without namespace aliases', () => {
    expect(fieldName('AlarmIdentifier')).toBe('AlarmIdentifier');
    expect(fieldName('cnc:AlarmIdentifier')).toBe('AlarmIdentifier');
    expect(fieldName('LimitState/CurrentState')).toBe('LimitState.CurrentState');
  });
});
