import { invalidArgument } from './errors.js'
import { murmur2, toPositive } from './murmur2.js'

/**
 * Chooses the partition of a record appended to a topic without an explicit
 * partition. The topic calls `onNewBatch` once at the start of every append
 * call, then `partition` once per record of that call that has no partition.
 *
 * Implementations must return an integer in `[0, partitionCount)` and may keep
 * state between calls; the topic calls them from one append at a time.
 */
export interface Partitioner {
  /** Partition for one record with no explicit partition. `key` is null for unkeyed records. Called once per record. */
  partition(key: Uint8Array | null, partitionCount: number): number
  /** Called once at the start of every topic-level append call (one call = one batch per partition); sticky partitioners switch here. */
  onNewBatch?(partitionCount: number): void
}

/**
 * Where `DefaultPartitioner` sends records whose key is null.
 * - `'sticky'`: every null-key record of one append call goes to one
 *   partition, so the call writes one larger batch instead of a small batch
 *   per partition; the next call moves to the next partition.
 * - `'round-robin'`: each null-key record goes to the next partition, which
 *   spreads records most evenly and writes the most batches.
 */
export type NullKeyStrategy = 'sticky' | 'round-robin'

export interface DefaultPartitionerOptions {
  /**
   * How records with a null key are spread over the partitions.
   * @default 'sticky'
   */
  nullKey?: NullKeyStrategy
}

const DEFAULTS: Readonly<Required<DefaultPartitionerOptions>> = Object.freeze({
  nullKey: 'sticky'
})

/** Marks "no sticky partition chosen yet", before the first batch. */
const NONE = -1

/**
 * strand's default partitioner: Kafka's placement for keyed records, a
 * deterministic rotation for null keys.
 *
 * Keyed records go to `toPositive(murmur2(key)) % partitionCount`, the formula
 * of Kafka's Java client (`BuiltInPartitioner.partitionForKey`, and
 * `DefaultPartitioner` before it), so a key maps to the same partition number
 * as in Kafka with the same partition count. An empty key is a key, not a null
 * one: it hashes like any other. Keyed placement is a pure function of the key
 * bytes and the count; it never depends on the null-key state below.
 *
 * Null keys follow `nullKey`. `'sticky'` adapts Kafka's sticky partitioner
 * (KIP-480), which keeps a partition until its batch completes. Here a batch
 * completes at the end of each append call, so the partition changes at each
 * `onNewBatch`, and it rotates in order rather than at random: strand's
 * partitions are local and always available, and a fixed order makes placement
 * reproducible. Both strategies start at partition 0.
 *
 * The null-key state is per instance: give each topic its own instance, or
 * topics sharing one will take turns in one rotation. Not safe for concurrent
 * use; the topic serialises appends.
 */
export class DefaultPartitioner implements Partitioner {
  readonly #nullKey: NullKeyStrategy
  /** The next partition of the rotation, before `% partitionCount`; wraps at 2^31 like Kafka's counter. */
  #counter = 0
  /** Partition of the current batch's null-key records under 'sticky', or NONE before the first. */
  #sticky = NONE

  constructor(options?: DefaultPartitionerOptions) {
    if (options !== undefined && (options === null || typeof options !== 'object')) {
      throw invalidArgument('options', 'an object', options)
    }
    // Only undefined means "use the default"; null is a mistake worth reporting.
    const nullKey = options?.nullKey === undefined ? DEFAULTS.nullKey : options.nullKey
    if (nullKey !== 'sticky' && nullKey !== 'round-robin') {
      throw invalidArgument('nullKey', "'sticky' or 'round-robin'", nullKey)
    }
    this.#nullKey = nullKey
  }

  partition(key: Uint8Array | null, partitionCount: number): number {
    checkPartitionCount(partitionCount)
    if (key !== null) return toPositive(murmur2(key)) % partitionCount
    if (this.#nullKey === 'round-robin') return this.#next(partitionCount)
    // A partition count lower than at the last `onNewBatch` (or no batch yet)
    // leaves no valid sticky partition; take the next one rather than fail.
    if (this.#sticky === NONE || this.#sticky >= partitionCount) this.#sticky = this.#next(partitionCount)
    return this.#sticky
  }

  onNewBatch(partitionCount: number): void {
    checkPartitionCount(partitionCount)
    // Round-robin ignores batches: its rotation runs on across append calls.
    if (this.#nullKey === 'sticky') this.#sticky = this.#next(partitionCount)
  }

  #next(partitionCount: number): number {
    const partition = this.#counter % partitionCount
    this.#counter = (this.#counter + 1) & 0x7fffffff
    return partition
  }
}

function checkPartitionCount(partitionCount: number): void {
  if (!Number.isInteger(partitionCount) || partitionCount < 1) {
    throw invalidArgument('partitionCount', 'an integer >= 1', partitionCount)
  }
}
