import type { Logger } from 'pino';
import type { Component } from '../core/component.js';
import type { Point } from '../core/point.js';
import type { Reject } from '../deadletters/dead-letters.js';

/** What the pipeline gives a source. */
export interface SourceContext {
  /**
   * Hands points to the pipeline. Resolves once they are durable in the buffer, or refused by a
   * processor and dead-lettered, or dropped on purpose and counted (buffer full under
   * `whenFull: drop_newest`, docs/delivery.md rule 3): only then may the source acknowledge its
   * input (rule 1). Rejects when the pipeline cannot take them (stopping, a buffer that is not
   * running): the source must then not acknowledge, so the publisher or broker sends again.
   */
  ingest(points: Point[], source: string): Promise<void>;
  /** Input that cannot become points, with its reason: the pipeline dead-letters it. */
  reject: Reject;
  log: Logger;
  /** Bytes of lines the pipeline holds until their buffer commit (what intake has in memory). */
  pendingBytes?: () => number;
}

export interface Source extends Component {
  readonly kind: 'source';
}
