/**
 * Every reason plantgate gives for a value it did not store (dead letters and drops) and for a
 * connection or packet the broker refused. One list each, so `/metrics` can show every counter
 * from the start at 0, and docs/bad-input.md is checked against them (tests/reasons.test.ts).
 */
export const DROP_REASONS = [
  // a payload that cannot become points (MQTT JSON routes)
  'payload_too_large', 'invalid_utf8', 'invalid_json', 'not_an_object', 'no_fields', 'too_deep', 'too_many_fields', 'too_many_points',
  'expansion_too_large', 'duplicate_point', 'wrong_type', 'bad_timestamp',
  // a value InfluxDB could not store or would store wrongly (the guard, OPC UA, Sparkplug values)
  'reserved_name', 'empty_name', 'empty_tag_value', 'newline_in_name', 'unencodable_backslash', 'non_finite_float', 'non_finite',
  'integer_out_of_range', 'string_too_long', 'array_too_long', 'too_large', 'timestamp_in_future', 'timestamp_too_old', 'timestamp_out_of_range',
  'series_budget_exceeded',
  // OPC UA values: a quality the endpoint does not accept (accept:), a structure that cannot become fields
  'quality_good', 'quality_uncertain', 'quality_bad', 'unsupported_type', 'structure_too_deep',
  // Sparkplug B
  'sparkplug_malformed', 'sparkplug_topic', 'sparkplug_bad_state', 'sparkplug_bad_value', 'sparkplug_bad_metric', 'sparkplug_bad_seq', 'data_before_birth', 'unknown_alias',
  // Sparkplug messages that carry no telemetry for this host: counted, not dead-lettered
  'group_not_owned', 'group_not_configured', 'command', 'stale_death',
  // InfluxDB refused the line
  'influx_400', 'influx_413',
  // the buffer
  'buffer_full_drop_newest', 'buffer_full_drop_oldest', 'corrupt_record', 'segment_missing',
  // an OPC UA value the pipeline could not take (stopping)
  'pipeline_refused',
] as const;

export const REFUSAL_REASONS = [
  'malformed_packet', 'packet_too_large', 'packet_timeout', 'partial_packets_over_limit', 'control_packet_flood', 'output_backlog',
  'invalid_topic', 'topic_too_long', 'topic_too_deep', 'reserved_topic', 'inflight_exceeded', 'client_id_rejected',
  'too_many_connections', 'connection_rate_limited', 'too_many_auth_failures', 'bad_credentials', 'anonymous_refused',
  'certificate_refused', 'unknown_certificate', 'certificate_username_mismatch', 'tls_handshake_failed', 'publish_denied', 'subscribe_denied', 'retain_refused',
] as const;

export type DropReason = (typeof DROP_REASONS)[number];
export type RefusalReason = (typeof REFUSAL_REASONS)[number];
/** What a component's `dropped` counters are keyed by: a drop or dead letter, or a refusal of the broker's. */
export type Reason = DropReason | RefusalReason;
