import { describe, expect, it } from 'vitest';
import { type ClusterView, plan, quotas } from './assignment.js';

const units = Array.from({ length: 16 }, (_v, i) => (i < 12 ? `opcua/cnc-${i + 1}` : `sparkplug/group-${i - 11}`));

/** Runs every member's plan in turn, claims arbitrated as etcd would (first come), until nothing moves. */
function settle(members: string[], owners = new Map<string, string>(), rounds = 100): { owners: Map<string, string>; moves: number; rounds: number } {
  let moves = 0;
  for (let r = 0; r < rounds; r++) {
    let changed = false;
    for (const me of members) {
      const view: ClusterView = { members, owners, units };
      const p = plan(view, me);
      for (const u of p.release) {
        owners.delete(u);
        changed = true;
        moves++;
      }
      for (const u of p.claim) {
        if (owners.has(u)) continue;
        owners.set(u, me);
        changed = true;
      }
    }
    if (!changed) return { owners, moves, rounds: r };
  }
  throw new Error('did not settle');
}

function counts(owners: Map<string, string>): Record<string, number> {
  const c: Record<string, number> = {};
  for (const m of owners.values()) c[m] = (c[m] ?? 0) + 1;
  return c;
}

describe('unit assignment', () => {
  it('gives each member its quota, some members one more', () => {
    expect([...quotas(16, ['gw-3', 'gw-1', 'gw-2'])]).toEqual([['gw-1', 6], ['gw-2', 5], ['gw-3', 5]]);
    expect([...quotas(16, ['gw-3', 'gw-1', 'gw-2'], 'sparkplug')].map(([, n]) => n).sort()).toEqual([5, 5, 6]);
    expect([...quotas(12, ['a', 'b', 'c'])].map(([, n]) => n)).toEqual([4, 4, 4]);
    expect(quotas(5, []).size).toBe(0);
  });

  it('spreads every unit over three members, each once, and stops moving', () => {
    const { owners } = settle(['gw-1', 'gw-2', 'gw-3']);
    expect(owners.size).toBe(16);
    // each kind on its own: 12 endpoints 4/4/4, 4 groups 2/1/1
    const opcua = counts(new Map([...owners].filter(([u]) => u.startsWith('opcua/'))));
    expect(Object.values(opcua)).toEqual([4, 4, 4]);
    expect(Object.values(counts(new Map([...owners].filter(([u]) => u.startsWith('sparkplug/'))))).sort()).toEqual([1, 1, 2]);
    expect(Object.values(counts(owners)).sort()).toEqual([5, 5, 6]);
  });

  it('after a member dies, the others take its units; when it returns, only what it needs moves back', () => {
    const start = settle(['gw-1', 'gw-2', 'gw-3']).owners;
    const before = new Map(start);
    for (const [u, m] of [...start]) if (m === 'gw-2') start.delete(u); // its lease expired
    const after = settle(['gw-1', 'gw-3'], start);
    expect(counts(after.owners)).toEqual({ 'gw-1': 8, 'gw-3': 8 });
    expect(Object.values(counts(new Map([...after.owners].filter(([u]) => u.startsWith('opcua/')))))).toEqual([6, 6]);
    // the survivors kept what they had
    for (const [u, m] of before) if (m !== 'gw-2') expect(after.owners.get(u)).toBe(m);
    const back = settle(['gw-1', 'gw-2', 'gw-3'], after.owners);
    expect(counts(back.owners)).toEqual(counts(before));
    // only what the returning member needs moves to it, and no more
    expect(back.moves).toBe(counts(before)['gw-2']);
  });

  it('a lone member takes everything; a unit no longer configured is released by its owner', () => {
    const { owners } = settle(['gw-1']);
    expect(owners.size).toBe(16);
    owners.set('opcua/removed', 'gw-1');
    expect(plan({ members: ['gw-1'], owners, units }, 'gw-1').release).toEqual(['opcua/removed']);
  });

  it('does not give a unit up when nobody is short of its quota, and claims a starving unit beyond it', () => {
    const opcua = units.filter((u) => u.startsWith('opcua/'));
    const owners = new Map(opcua.map((u, i) => [u, i < 6 ? 'gw-1' : 'gw-2']));
    owners.delete('opcua/cnc-1');
    // gw-1 holds 5 of quota 6; gw-2 holds 6 of 6: the unowned one is gw-1's to take
    const view = { members: ['gw-1', 'gw-2'], owners, units: opcua };
    expect(plan(view, 'gw-2')).toEqual({ claim: [], release: [] });
    expect(plan(view, 'gw-2', new Set(['opcua/cnc-1'])).claim).toEqual(['opcua/cnc-1']);
    expect(plan(view, 'gw-1').claim).toEqual(['opcua/cnc-1']);
  });
});
