/**
 * Who should read what: a pure function of what every member sees in etcd (the live members and
 * the current owner of each unit), run by each member for itself. Nobody assigns units to others;
 * a member only claims units nobody owns and gives up its own, and etcd's transactions make a
 * claim exclusive. Because every member computes the same quotas from the same view, the fleet
 * settles on an even spread without a leader.
 *
 * - Quota, per kind of unit (the part before `/`: OPC UA endpoints cost more than Sparkplug
 *   groups, so each kind is spread evenly on its own): units / members, and `units mod members`
 *   members one more, taken in name order from a place that depends on the kind (so the same
 *   member does not get every kind's extra).
 * - Below quota: claim unowned units, each member in its own order (a hash of member and unit),
 *   so that members joining at once do not all race for the same unit.
 * - Above quota: give up one unit per round, and only while another member is below its quota,
 *   so the units move towards the member that needs them and never in circles.
 * - A unit left unowned for longer than the grace (a view that disagrees, a member at quota that
 *   cannot start it) is claimed by anyone: no unit stays dark because the arithmetic says so.
 */
import { createHash } from 'node:crypto';

export interface ClusterView {
  /** Live members, by instance name. */
  members: string[];
  /** unit -> the instance holding its lease. */
  owners: ReadonlyMap<string, string>;
  /** Every unit of the fleet (the same configuration on every member). */
  units: readonly string[];
}

export interface Plan {
  claim: string[];
  release: string[];
}

export function quotas(unitCount: number, members: readonly string[], kind = ''): Map<string, number> {
  const sorted = [...members].sort();
  const n = sorted.length;
  const base = n ? Math.floor(unitCount / n) : 0;
  const extra = n ? unitCount % n : 0;
  const offset = n && kind ? parseInt(createHash('sha1').update(kind).digest('hex').slice(0, 8), 16) % n : 0;
  return new Map(sorted.map((m, i) => [m, base + ((i - offset + n) % n < extra ? 1 : 0)]));
}

const kindOf = (unit: string) => unit.slice(0, Math.max(0, unit.indexOf('/')));

function preference(me: string, unit: string): string {
  return createHash('sha1').update(`${me}\0${unit}`).digest('hex');
}

/**
 * What `me` should do now. `starving`: units unowned for longer than the grace. Units `me` owns
 * that are no longer configured are released at once.
 */
export function plan(view: ClusterView, me: string, starving: ReadonlySet<string> = new Set(), maxMoves = 1): Plan {
  const out: Plan = { claim: [], release: [] };
  const kinds = new Set(view.units.map(kindOf));
  for (const [unit, owner] of view.owners) if (owner === me && !kinds.has(kindOf(unit))) out.release.push(unit); // a kind no longer configured
  for (const kind of [...kinds].sort()) {
    const units = view.units.filter((u) => kindOf(u) === kind);
    const owners = new Map([...view.owners].filter(([u]) => kindOf(u) === kind));
    const p = planKind({ members: view.members, owners, units }, me, kind, starving, maxMoves);
    out.claim.push(...p.claim);
    out.release.push(...p.release);
  }
  return out;
}

function planKind(view: ClusterView, me: string, kind: string, starving: ReadonlySet<string>, maxMoves: number): Plan {
  const units = new Set(view.units);
  const q = quotas(units.size, view.members, kind);
  const mine: string[] = [];
  const held = new Map<string, number>();
  const release: string[] = [];
  for (const [unit, owner] of view.owners) {
    if (!units.has(unit)) {
      if (owner === me) release.push(unit);
      continue;
    }
    held.set(owner, (held.get(owner) ?? 0) + 1);
    if (owner === me) mine.push(unit);
  }
  const quota = q.get(me) ?? 0;
  const unowned = [...units].filter((u) => !view.owners.has(u)).sort((a, b) => preference(me, a).localeCompare(preference(me, b)));
  const claim: string[] = [];
  if (mine.length < quota) claim.push(...unowned.slice(0, quota - mine.length));
  for (const u of unowned) if (starving.has(u) && !claim.includes(u)) claim.push(u);
  if (mine.length > quota) {
    const someoneShort = view.members.some((m) => m !== me && (held.get(m) ?? 0) < (q.get(m) ?? 0));
    // hand over only what another member is waiting for, and not faster than it can take it
    if (someoneShort) release.push(...mine.sort().slice(quota).slice(-maxMoves));
  }
  return { claim, release };
}
