/**
 * OPC UA events and conditions (Part 9, Alarms & Conditions) of one endpoint: one event
 * monitored item per `events` entry, on its notifier, with a select clause (the default fields
 * and the entry's own) and a where clause (minimum severity, event types). Each event becomes a
 * point of its own measurement; conditions are also kept as the endpoint's active alarms, which
 * ConditionRefresh rebuilds on every new subscription (RefreshStartEvent ... RefreshEndEvent
 * bracket the conditions the server still retains).
 *
 * A bad entry (unknown notifier, a filter the server refuses) is shown with its status code, like
 * a bad node, and never stops the endpoint.
 */
import {
  AttributeIds,
  callConditionRefresh,
  type ClientSession,
  type ClientSubscription,
  coerceQualifiedName,
  ContentFilterElement,
  DataType,
  EventFilter,
  type EventFilterResult,
  type EventNotificationList,
  FilterOperator,
  LiteralOperand,
  makeContentFilter,
  MonitoringMode,
  type NodeId,
  ObjectTypeIds,
  type QualifiedName,
  resolveNodeId,
  SimpleAttributeOperand,
  TimestampsToReturn,
  Variant,
} from 'node-opcua';
import { type ClientSessionRawSubscriptionService } from 'node-opcua-client';
import type { Logger } from 'pino';
import type { FieldValue, Point } from '../../core/point.js';
import { resolveTarget } from './browse.js';
import type { EndpointConfig, EventsConfig } from './config.js';
import { convertVariant } from './values.js';

/** Selected by every entry, in this order (the entry's own fields follow). */
const DEFAULT_FIELDS = ['EventId', 'EventType', 'SourceName', 'Time', 'Message', 'Severity', 'ConditionName', 'ActiveState/Id', 'AckedState/Id', 'Retain'] as const;
const EVENT_ID = 0, EVENT_TYPE = 1, SOURCE_NAME = 2, TIME = 3, MESSAGE = 4, SEVERITY = 5, CONDITION_NAME = 6, ACTIVE = 7, ACKED = 8, RETAIN = 9;
/** The ConditionId (the condition's node id) is selected last, by the NodeId attribute of ConditionType. */
const CONDITION_ID = DEFAULT_FIELDS.length;
const EXTRA_FROM = DEFAULT_FIELDS.length + 1;

const REFRESH_START = resolveNodeId(ObjectTypeIds.RefreshStartEventType).toString();
const REFRESH_END = resolveNodeId(ObjectTypeIds.RefreshEndEventType).toString();
const STANDARD_TYPES = new Map(Object.entries(ObjectTypeIds).map(([name, id]) => [resolveNodeId(id).toString(), name]));

/** Part 9's severity ranges (5.8.2): what a band tag groups without a series per severity. */
export function severityBand(severity: number): 'high' | 'medium_high' | 'medium' | 'medium_low' | 'low' {
  if (severity > 800) return 'high';
  if (severity > 600) return 'medium_high';
  if (severity > 400) return 'medium';
  if (severity > 200) return 'medium_low';
  return 'low';
}
export const SEVERITY_BANDS = ['high', 'medium_high', 'medium', 'medium_low', 'low'] as const;

export type EventEntryStatus = 'pending' | 'ok' | 'failed';

interface Entry {
  config: EventsConfig;
  index: number;
  status: EventEntryStatus;
  statusCode: string;
  since: number;
  events: number;
  handle?: number;
  /** Condition keys seen since the last RefreshStartEvent, while a refresh runs. */
  refreshing?: Set<string>;
}

export interface ActiveAlarm {
  source: string;
  condition: string;
  type: string;
  severity: number;
  message: string;
  active: boolean;
  acked: boolean;
  time: number;
}

/** Client handles of event items, above any a value item gets (those count up from 1). */
const EVENT_HANDLES = 0x4000_0000;

/** Where the default fields are declared: a server checks a select clause against its type. */
const DECLARED_BY: Record<string, keyof typeof ObjectTypeIds> = {
  ConditionName: 'ConditionType',
  Retain: 'ConditionType',
  'AckedState/Id': 'AcknowledgeableConditionType',
  'ActiveState/Id': 'AlarmConditionType',
};

function operand(path: QualifiedName[], type: keyof typeof ObjectTypeIds = 'BaseEventType'): SimpleAttributeOperand {
  return new SimpleAttributeOperand({ typeDefinitionId: resolveNodeId(ObjectTypeIds[type]), browsePath: path, attributeId: AttributeIds.Value });
}

export class EventItems {
  readonly entries: Entry[];
  private byHandle = new Map<number, Entry>();
  /** Active conditions, by entry and condition (ConditionId, else source and name). */
  private readonly alarms = new Map<string, ActiveAlarm>();
  private readonly typeNames = new Map<string, string>();
  private session?: ClientSession;
  private queue: Promise<void> = Promise.resolve();
  conditionRefresh = '';

  constructor(
    private readonly config: EndpointConfig,
    private readonly endpoint: string,
    private readonly log: Logger,
    private readonly emit: (points: Point[]) => void,
  ) {
    this.entries = config.events.map((c, index) => ({ config: c, index, status: 'pending', statusCode: '', since: Date.now(), events: 0 }));
  }

  /** The select clauses of an entry: the defaults, ConditionId, then its own fields. */
  private selectFor(e: EventsConfig, namespaceArray: string[]): SimpleAttributeOperand[] {
    const select = DEFAULT_FIELDS.map((f) => operand(f.split('/').map((n) => coerceQualifiedName(n)), DECLARED_BY[f]));
    select.push(new SimpleAttributeOperand({ typeDefinitionId: resolveNodeId(ObjectTypeIds.ConditionType), browsePath: null, attributeId: AttributeIds.NodeId }));
    for (const f of e.fields) {
      // a path of browse names below the event (`LimitState/CurrentState`), each with an optional alias
      const path = f.split('/').map((part) => {
        const colon = part.indexOf(':');
        const alias = colon > 0 ? part.slice(0, colon) : undefined;
        const namespaceIndex = alias ? namespaceArray.indexOf(this.config.namespaces[alias]!) : 0;
        if (namespaceIndex < 0) throw new Error(`namespace ${this.config.namespaces[alias!]} (alias ${alias}) is not on the server`);
        return coerceQualifiedName({ namespaceIndex, name: part.slice(colon + 1) });
      });
      select.push(operand(path));
    }
    return select;
  }

  /** Severity at least minSeverity and one of the types, or a refresh marker (which must always pass). */
  private async whereFor(e: EventsConfig, session: ClientSession, namespaceArray: string[]) {
    const severity = new ContentFilterElement({
      filterOperator: FilterOperator.GreaterThanOrEqual,
      filterOperands: [operand([coerceQualifiedName('Severity')]), new LiteralOperand({ value: new Variant({ dataType: DataType.UInt16, value: e.minSeverity }) })],
    });
    const ofType = (id: NodeId) => new ContentFilterElement({ filterOperator: FilterOperator.OfType, filterOperands: [new LiteralOperand({ value: new Variant({ dataType: DataType.NodeId, value: id }) })] });
    const or = (a: ContentFilterElement, b: ContentFilterElement) => new ContentFilterElement({ filterOperator: FilterOperator.Or, filterOperands: [a, b] });
    let wanted = severity;
    if (e.types.length) {
      const ids: NodeId[] = [];
      for (const t of e.types) ids.push(await this.typeId(t, session, namespaceArray));
      wanted = new ContentFilterElement({ filterOperator: FilterOperator.And, filterOperands: [severity, ids.map(ofType).reduce(or)] });
    }
    return makeContentFilter(or(wanted, or(ofType(resolveNodeId(ObjectTypeIds.RefreshStartEventType)), ofType(resolveNodeId(ObjectTypeIds.RefreshEndEventType)))));
  }

  private async typeId(t: string, session: ClientSession, namespaceArray: string[]): Promise<NodeId> {
    if (t in ObjectTypeIds) return resolveNodeId(ObjectTypeIds[t as keyof typeof ObjectTypeIds]);
    if (/^(nsu=|ns=\d+;)?[ibgs]=/.test(t) || t.startsWith('/')) return resolveTarget(session, t, namespaceArray, this.config.namespaces);
    throw new Error(`unknown event type ${JSON.stringify(t)}: give a standard type name (AlarmConditionType) or a node id`);
  }

  /** Creates the event monitored items of a new subscription, then asks for the retained conditions. */
  async create(session: ClientSession, sub: ClientSubscription, namespaceArray: string[]): Promise<void> {
    this.session = session;
    this.byHandle.clear();
    for (const e of this.entries) {
      e.handle = undefined;
      let filter: EventFilter;
      let notifier: NodeId;
      try {
        notifier = await resolveTarget(session, e.config.source, namespaceArray, this.config.namespaces);
        filter = new EventFilter({ selectClauses: this.selectFor(e.config, namespaceArray), whereClause: await this.whereFor(e.config, session, namespaceArray) });
      } catch (err) {
        this.mark(e, 'failed', (err as Error).message);
        continue;
      }
      const handle = EVENT_HANDLES + e.index;
      const res = await (session as ClientSession & ClientSessionRawSubscriptionService).createMonitoredItems({
        subscriptionId: sub.subscriptionId,
        timestampsToReturn: TimestampsToReturn.Neither,
        itemsToCreate: [{ itemToMonitor: { nodeId: notifier, attributeId: AttributeIds.EventNotifier }, monitoringMode: MonitoringMode.Reporting, requestedParameters: { clientHandle: handle, samplingInterval: 0, queueSize: 1000, discardOldest: true, filter } }],
      });
      const r = res.results?.[0];
      if (!r || !r.statusCode.isGood()) {
        this.mark(e, 'failed', r?.statusCode.name ?? 'no result');
        continue;
      }
      const problems = filterProblems(r.filterResult as EventFilterResult | null, e.config.fields);
      e.handle = handle;
      this.byHandle.set(handle, e);
      this.mark(e, problems ? 'failed' : 'ok', problems);
    }
    if (this.byHandle.size === 0) return;
    try {
      // it answers with a status code, not an exception
      const status = await callConditionRefresh(session, sub.subscriptionId);
      if (status && !status.isGood()) throw new Error(`ConditionRefresh: ${status.name}`);
      this.conditionRefresh = 'ok';
    } catch (err) {
      // a server without conditions may not implement it; the events still flow. What was active
      // before cannot be confirmed any more: the list starts again from new events.
      this.conditionRefresh = (err as Error).message;
      this.alarms.clear();
      this.log.info({ endpoint: this.endpoint, err: (err as Error).message }, 'opcua ConditionRefresh failed: active alarms are known from new events only');
    }
  }

  /** An EventNotificationList, in arrival order (event type names may need a read first). */
  onEvents(list: EventNotificationList): void {
    const events = list.events ?? [];
    if (events.length === 0) return;
    const receivedAt = Date.now();
    this.queue = this.queue.then(() => this.process(events, receivedAt)).catch((err: unknown) => this.log.warn({ endpoint: this.endpoint, err: (err as Error).message }, 'opcua events could not be read'));
  }

  private async process(events: NonNullable<EventNotificationList['events']>, receivedAt: number): Promise<void> {
    const points: Point[] = [];
    for (const ev of events) {
      const e = this.byHandle.get(ev.clientHandle);
      if (!e) continue;
      const f = ev.eventFields ?? [];
      const val = (i: number) => (f[i] && f[i]!.dataType !== DataType.Null ? f[i]!.value : undefined);
      const typeId = val(EVENT_TYPE) as NodeId | undefined;
      const typeKey = typeId?.toString() ?? '';
      if (typeKey === REFRESH_START) {
        e.refreshing = new Set();
        continue;
      }
      if (typeKey === REFRESH_END) {
        const seen = e.refreshing;
        e.refreshing = undefined;
        if (seen) for (const k of [...this.alarms.keys()]) if (k.startsWith(`${e.index}\u0000`) && !seen.has(k)) this.alarms.delete(k);
        continue;
      }
      e.events++;
      const type = typeId ? await this.typeName(typeId) : 'unknown';
      const source = String(val(SOURCE_NAME) ?? '');
      const severity = Number(val(SEVERITY) ?? 0);
      const message = String((val(MESSAGE) as { text?: string } | undefined)?.text ?? '');
      const time = (val(TIME) as Date | undefined)?.getTime() || receivedAt;
      const condition = val(CONDITION_NAME) as string | undefined;
      const active = val(ACTIVE) as boolean | undefined;
      const acked = val(ACKED) as boolean | undefined;
      const retain = val(RETAIN) as boolean | undefined;
      const fields: Record<string, FieldValue> = { message, severity: BigInt(severity) };
      const eventId = val(EVENT_ID) as Buffer | undefined;
      if (eventId) fields.event_id = Buffer.from(eventId).toString('hex');
      if (active !== undefined) fields.active = active;
      if (acked !== undefined) fields.acked = acked;
      if (retain !== undefined) fields.retain = retain;
      e.config.fields.forEach((name, k) => {
        const conv = convertVariant(fieldName(name), f[EXTRA_FROM + k], this.config.maxArrayLength);
        if (conv.ok) Object.assign(fields, conv.fields);
      });
      const tags: Record<string, string> = { ...this.config.tags, ...e.config.tags, endpoint: this.endpoint, event_type: type, severity_band: severityBand(severity) };
      if (source) tags.source = source;
      if (condition) tags.condition = condition;
      points.push({ measurement: e.config.measurement, tags, fields, time, receivedAt, quality: 'good', source: this.endpoint, origin: { endpoint: this.endpoint } });
      if (condition !== undefined) this.keepCondition(e, val(CONDITION_ID) as NodeId | undefined, { source, condition, type, severity, message, active: active ?? false, acked: acked ?? true, time }, retain);
    }
    if (points.length) this.emit(points);
  }

  /** A condition event: retained conditions are the active alarms; Retain false ends one. */
  private keepCondition(e: Entry, id: NodeId | undefined, alarm: ActiveAlarm, retain: boolean | undefined): void {
    const key = `${e.index}\u0000${id ? id.toString() : `${alarm.source}/${alarm.condition}`}`;
    e.refreshing?.add(key);
    if (retain === false || (!alarm.active && alarm.acked)) this.alarms.delete(key);
    else this.alarms.set(key, alarm);
  }

  /** The browse name of an event type: the standard ones by table, others read once. */
  private async typeName(id: NodeId): Promise<string> {
    const key = id.toString();
    const known = STANDARD_TYPES.get(key) ?? this.typeNames.get(key);
    if (known) return known;
    let name = key;
    try {
      const dv = await this.session?.read({ nodeId: id, attributeId: AttributeIds.BrowseName });
      const qn = dv?.value.value as QualifiedName | undefined;
      if (dv?.statusCode.isGood() && qn?.name) name = qn.name;
    } catch {
      /* the node id itself names the type */
    }
    this.typeNames.set(key, name);
    return name;
  }

  private mark(e: Entry, status: EventEntryStatus, code: string): void {
    if (status === 'failed' && (e.status !== 'failed' || e.statusCode !== code)) {
      this.log.warn({ endpoint: this.endpoint, events: e.config.source, status: code }, 'opcua events entry failed');
    }
    if (e.status !== status || e.statusCode !== code) e.since = Date.now();
    e.status = status;
    e.statusCode = code;
  }

  failing(): Entry[] {
    return this.entries.filter((e) => e.status === 'failed');
  }

  activeAlarms(): ActiveAlarm[] {
    return [...this.alarms.values()].sort((a, b) => b.severity - a.severity || a.time - b.time);
  }

  details() {
    const alarms = this.activeAlarms();
    const bySeverity = Object.fromEntries(SEVERITY_BANDS.map((b) => [b, 0])) as Record<(typeof SEVERITY_BANDS)[number], number>;
    for (const a of alarms) bySeverity[severityBand(a.severity)]++;
    return {
      entries: this.entries.map((e) => ({ source: e.config.source, types: e.config.types, status: e.status, statusCode: e.statusCode, since: e.since, events: e.events })),
      conditionRefresh: this.conditionRefresh,
      activeAlarms: alarms.slice(0, 100),
      activeAlarmCount: alarms.length,
      activeAlarmsBySeverity: bySeverity,
    };
  }
}

/** An entry's field as a field name: its browse names without aliases, joined by dots. */
export function fieldName(path: string): string {
  return path
    .split('/')
    .map((p) => p.slice(p.indexOf(':') + 1))
    .join('.');
}

/**
 * What the server said about a filter: bad select clauses (named) and a bad where clause. An
 * entry's own field is looked for on BaseEventType, where a companion spec's property is not:
 * its BadNoMatch only says so (the events that have it fill it), and a ConditionId the server
 * cannot select (BadNothingToDo, BadNoMatch) leaves conditions keyed by source and name.
 */
function filterProblems(r: EventFilterResult | null, extra: string[]): string {
  if (!r) return '';
  const names = [...DEFAULT_FIELDS, 'ConditionId', ...extra];
  const bad: string[] = [];
  (r.selectClauseResults ?? []).forEach((s, i) => {
    const tolerated = i >= CONDITION_ID && (s.name === 'BadNoMatch' || s.name === 'BadNothingToDo');
    if (!s.isGood() && !tolerated) bad.push(`select ${names[i] ?? i}: ${s.name}`);
  });
  (r.whereClauseResult?.elementResults ?? []).forEach((el, i) => {
    if (!el.statusCode.isGood()) bad.push(`where element ${i}: ${el.statusCode.name}`);
  });
  return bad.join('; ');
}

