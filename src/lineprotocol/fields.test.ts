/**
 * lineFields against InfluxDB's own decode vectors (shared/testdata/line-protocol): for every
 * single-line case InfluxDB decodes, the same measurement, field keys and field types; and
 * parseTypeConflicts on InfluxDB's wording.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { testdata } from '../../tests/helpers/testdata.js';
import { lineFields, parseTypeConflicts, withoutFields } from './fields.js';

interface Case {
  input: { text: string };
  output: { result?: { name: string; fields: { key: string; value: Record<string, unknown> }[] }[]; error?: string };
}
const KIND: Record<string, string> = { float: 'float', int: 'integer', uint: 'unsigned', bool: 'boolean', string: 'string' };
// Lines with a doubled backslash are left out: influxd treats it differently by position, and
// plantgate never writes one before a special character (checkPoint refuses `unencodable_backslash`).
const cases = Object.values((JSON.parse(readFileSync(testdata('line-protocol', 'decode-vectors-nonfuzz.js-safe.json'), 'utf8')) as { cases: Record<string, Case> }).cases).filter(
  (c) => c.output.result?.length === 1 && !c.input.text.trim().includes('\n') && !c.input.text.trimStart().startsWith('#') && !c.input.text.includes('\\\\'),
);

describe('withoutFields', () => {
  it('takes one field out of each decode vector with several and leaves the line otherwise as it was', () => {
    const multi = cases.filter((c) => c.output.result![0]!.fields.length >= 2);
    expect(multi.length).toBeGreaterThan(3);
    for (const c of multi) {
      const line = c.input.text.trim();
      const lf = lineFields(line)!;
      for (const drop of lf.fields.keys()) {
        const rest = withoutFields(line, lf, new Set([drop]))!;
        const back = lineFields(rest)!;
        expect(back.measurement, rest).toBe(lf.measurement);
        expect([...back.fields], rest).toEqual([...lf.fields].filter(([k]) => k !== drop));
        // the timestamp, if any, stays
        expect(rest.endsWith(line.slice([...lf.spans.values()].at(-1)![1])), rest).toBe(true);
      }
    }
    const one = lineFields('m,t=a v=1i 5')!;
    expect(withoutFields('m,t=a v=1i 5', one, new Set(['v']))).toBeUndefined();
    const two = lineFields('m\\ x,t=a\\ b v="a,b=c d",w=2 5')!;
    expect(withoutFields('m\\ x,t=a\\ b v="a,b=c d",w=2 5', two, new Set(['v']))).toBe('m\\ x,t=a\\ b w=2 5');
  });
});

describe('lineFields', () => {
  it('reads the decode vectors as InfluxDB does', () => {
    expect(cases.length).toBeGreaterThan(20);
    for (const c of cases) {
      const want = c.output.result![0]!;
      const got = lineFields(c.input.text.trim());
      expect(got?.measurement, c.input.text).toBe(want.name);
      expect([...got!.fields], c.input.text).toEqual(want.fields.map((f) => [f.key, KIND[Object.keys(f.value)[0]!]]));
    }
  });

  it('parses the field type conflicts of a 400', () => {
    const msg = 'partial write: field type conflict: input field "v" on measurement "m x" is type integer, already exists as type float dropped=3';
    expect(parseTypeConflicts(msg)).toEqual([{ field: 'v', measurement: 'm x', existing: 'float' }]);
    expect(parseTypeConflicts('unable to parse')).toEqual([]);
  });
});
