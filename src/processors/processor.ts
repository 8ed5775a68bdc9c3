import type { Component } from '../core/component.js';
import type { RejectedInput } from '../core/errors.js';
import type { Point } from '../core/point.js';

/** What a processor does with a point it refuses: the pipeline dead-letters it with the reason. */
export type Reject = (point: Point, why: RejectedInput) => void;

/**
 * Processors run synchronously on each group of points a source hands in, before the buffer.
 * They may change points in place, drop them (through `reject`, never silently) or pass them on.
 */
export interface Processor extends Component {
  readonly kind: 'processor';
  process(points: Point[], reject: Reject): Point[];
}
