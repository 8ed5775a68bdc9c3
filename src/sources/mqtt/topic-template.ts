/**
 * Topic templates turn MQTT topic levels into tags:
 *   `factory/{site}/{line}/{machine}/telemetry` subscribes to `factory/+/+/+/telemetry` and makes
 *   `site`, `line`, `machine` tags. A level is either literal text, `{name}` (one level, becomes a
 *   tag), `+` (one level, ignored) or a final `#` (any remaining levels, ignored).
 */
export interface TopicTemplate {
  source: string;
  /** The MQTT subscription filter equivalent to the template. */
  filter: string;
  /** Tag names in level order; `undefined` for levels that are literal or ignored. */
  match(topic: string): Record<string, string> | null;
  tagNames: string[];
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** Parses a template, throwing an Error whose message says what is wrong with it. */
export function parseTopicTemplate(template: string): TopicTemplate {
  if (template === '') throw new Error('topic template is empty');
  if (template.length > 65535) throw new Error('topic template is longer than MQTT allows');
  const levels = template.split('/');
  const literal: (string | null)[] = [];
  const captures: (string | null)[] = [];
  const tagNames: string[] = [];
  let multi = false;
  levels.forEach((level, i) => {
    if (level === '#') {
      if (i !== levels.length - 1) throw new Error(`"#" must be the last level (level ${i + 1} of ${JSON.stringify(template)})`);
      multi = true;
      return;
    }
    if (level === '+') {
      literal.push(null);
      captures.push(null);
      return;
    }
    if (level.startsWith('{') || level.endsWith('}')) {
      const name = level.slice(1, -1);
      if (!level.startsWith('{') || !level.endsWith('}') || !NAME.test(name)) {
        throw new Error(`level ${i + 1} ${JSON.stringify(level)} must be {name} with a name of letters, digits and _`);
      }
      if (tagNames.includes(name)) throw new Error(`placeholder {${name}} appears twice`);
      tagNames.push(name);
      literal.push(null);
      captures.push(name);
      return;
    }
    if (/[{}+#]/.test(level)) {
      throw new Error(`level ${i + 1} ${JSON.stringify(level)} mixes text with {, }, + or #; a placeholder must be a whole level`);
    }
    literal.push(level);
    captures.push(null);
  });
  const n = literal.length;
  const filter = literal.map((l) => (l === null ? '+' : l)).join('/') + (multi ? (n ? '/#' : '#') : '');
  return {
    source: template,
    filter,
    tagNames,
    match(topic: string) {
      // level by level with indexOf rather than split: only the captured levels become strings
      const tags: Record<string, string> = {};
      let start = 0;
      for (let i = 0; i < n; i++) {
        if (start > topic.length) return null; // fewer levels than the template
        let end = topic.indexOf('/', start);
        if (end === -1) end = topic.length;
        const lit = literal[i];
        if (lit !== null && lit !== undefined) {
          if (end - start !== lit.length || !topic.startsWith(lit, start)) return null;
        } else {
          // MQTT: wildcards never match a $-topic at the first level
          if (i === 0 && topic.charCodeAt(0) === 36) return null;
          const name = captures[i];
          if (name) {
            if (end === start) return null; // an empty level cannot be a tag value
            tags[name] = topic.slice(start, end);
          }
        }
        start = end + 1;
      }
      if (!multi && start <= topic.length) return null; // more levels than the template
      if (multi && n === 0 && topic.startsWith('$')) return null;
      return tags;
    },
  };
}
