/**
 * MQTT topic filters and access rules for the embedded broker's users.
 *
 * A rule is a topic filter that may name the connection's own identity: `%c` is its client id,
 * `%u` its username (or the certificate's common name), so one rule `factory/+/+/%c/#` gives every
 * device its own subtree. An identity holding `+`, `#` or `/` never matches a rule that uses it,
 * or a device called `#` could claim every topic.
 */

/** Why a topic filter is not valid, or undefined when it is. */
export function filterProblem(filter: string): string | undefined {
  if (filter === '') return 'empty topic filter';
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i]!;
    if (l.includes('#') && (l !== '#' || i !== levels.length - 1)) return `'#' must be a whole level and the last one (in ${JSON.stringify(filter)})`;
    if (l.includes('+') && l !== '+') return `'+' must be a whole level (in ${JSON.stringify(filter)})`;
  }
  return undefined;
}

/** Does the topic (no wildcards) match the filter? `$` topics match no leading wildcard. */
export function topicMatches(filter: string, topic: string): boolean {
  if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false;
  // the rule of anonymous and unrestricted clients, asked on every PUBLISH: no need to split
  if (filter === '#') return true;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/** Is every topic the subscription `sub` can receive also matched by `rule`? */
export function filterCovers(rule: string, sub: string): boolean {
  if (sub.startsWith('$') && (rule.startsWith('+') || rule.startsWith('#'))) return false;
  const r = rule.split('/');
  const s = sub.split('/');
  for (let i = 0; i < r.length; i++) {
    if (r[i] === '#') return true;
    if (i >= s.length) return false;
    if (s[i] === '#') return false; // the subscription reaches deeper than the rule allows
    if (r[i] === '+') continue;
    if (s[i] !== r[i]) return false;
  }
  return r.length === s.length;
}

export interface Identity {
  clientId: string;
  username?: string;
}

/** The rule with `%c` / `%u` filled in, or undefined when the identity cannot be used in a topic. */
export function expandRule(rule: string, who: Identity): string | undefined {
  if (!rule.includes('%')) return rule;
  const unsafe = (s: string | undefined) => s === undefined || s === '' || /[+#/\0]/.test(s);
  if (rule.includes('%c') && unsafe(who.clientId)) return undefined;
  if (rule.includes('%u') && unsafe(who.username)) return undefined;
  return rule.replace(/%c/g, who.clientId).replace(/%u/g, who.username ?? '');
}

export function mayPublish(rules: readonly string[], who: Identity, topic: string): boolean {
  return rules.some((r) => {
    const f = expandRule(r, who);
    return f !== undefined && topicMatches(f, topic);
  });
}

export function maySubscribe(rules: readonly string[], who: Identity, filter: string): boolean {
  return rules.some((r) => {
    const f = expandRule(r, who);
    return f !== undefined && filterCovers(f, filter);
  });
}
