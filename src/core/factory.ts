/**
 * Component factories (docs/components.md). Each component kind has one factory, in its own
 * folder, that owns the kind's zod schema (and with it every default, written once), builds a
 * component from a validated section, and says how a changed section reaches a running one:
 *  - `reconfigure` applies it in place (same connections, same sessions, same counters) and
 *    returns true, or returns false when only a restart of that one component can apply it;
 *  - `fixed` names what cannot change while the gateway runs at all (a reload that changes it is
 *    refused as a whole, so the running configuration is always the one shown).
 * The gateway's registry of kinds (src/gateway/kinds.ts) decides which instances a configuration
 * asks for and what each factory is handed; it is the only place that wires components together.
 */
import type { z } from 'zod';

export interface ComponentFactory<S extends z.ZodType, T, D> {
  /** The component's `type` in the status API. */
  readonly type: string;
  /** The section's schema; its defaults are the only defaults. */
  readonly schema: S;
  create(name: string, config: z.output<S>, deps: D): T;
  reconfigure?(component: T, next: z.output<S>, prev: z.output<S>): boolean | Promise<boolean>;
  fixed?(prev: z.output<S>, next: z.output<S>): string | undefined;
}

export function defineFactory<S extends z.ZodType, T, D>(f: ComponentFactory<S, T, D>): ComponentFactory<S, T, D> {
  return f;
}

/** Keys whose values differ between two sections (shallow: a changed nested object counts as its key). */
export function changedKeys<C extends object>(prev: C, next: C): string[] {
  const keys = new Set([...Object.keys(prev), ...Object.keys(next)]);
  return [...keys].filter((k) => canonical((prev as Record<string, unknown>)[k]) !== canonical((next as Record<string, unknown>)[k]));
}

/** JSON with sorted keys: equal sections give equal text whatever the key order in the file. */
export function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => {
    if (typeof x === 'bigint') return x.toString();
    if (x && typeof x === 'object' && !Array.isArray(x) && !(x instanceof Uint8Array)) {
      return Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    return x;
  }) ?? 'undefined';
}
