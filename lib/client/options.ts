/** Option checks and types the clients share. */
import { invalidArgument } from '../errors.js'

/** Kafka's acks: 0 (fire and forget into the buffer), 1 (the partition has it), 'all'/-1 (every in-sync replica has it). */
export type Acks = 0 | 1 | -1 | 'all'

export function checkAcks(acks: unknown): asserts acks is Acks {
  if (acks !== 0 && acks !== 1 && acks !== -1 && acks !== 'all') throw invalidArgument('acks', "0, 1, -1 or 'all'", acks)
}

export function optionalInt(name: string, v: unknown, min: number, max: number): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw invalidArgument(name, `an integer in [${min}, ${max}]`, v)
}

/** Copies `o` without its undefined fields, so `{ ...DEFAULTS, ...stripUndefined(o) }` keeps defaults for them. */
export function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {}
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] !== undefined) out[k] = o[k]
  return out
}
