/**
 * What a partition remembers about idempotent producers, so that a retried batch is answered
 * with the offsets it got the first time instead of being written twice (Kafka's
 * ProducerStateManager).
 *
 * Invariants:
 * - For each producer id: its epoch and its last `BATCHES_PER_PRODUCER` batches (sequence
 *   range → offsets), newest last. Sequences count records, start at 0 and wrap at 2^31.
 * - A batch from a known producer is a duplicate when its sequence range equals a cached
 *   batch's; otherwise it must start right after the last one (OUT_OF_ORDER_SEQUENCE), and its
 *   epoch must not be older (PRODUCER_FENCED). A newer epoch starts again at sequence 0.
 * - A producer the partition does not know (new, or forgotten after `EXPIRATION_MS` of
 *   silence or with the segments that held it) is accepted at any sequence: there is nothing
 *   to compare against, and refusing would strand a producer whose state retention took.
 * - The state is derived data: a snapshot (state as of an offset) plus a replay of the batch
 *   headers after it rebuilds it; see `Partition` for when snapshots are written.
 *
 * Snapshot payload (framed file kind `STPS`, docs/format.md): offset int64, count int32, then
 * per producer: producerId int64, epoch int16, firstSeq int32, lastSeq int32, baseOffset int64,
 * lastOffset int64, lastTimestamp int64 — 46 bytes each, big-endian. Only each producer's last
 * batch is kept: enough to answer the retry of the batch in flight when a process stopped.
 */
import { StrandError } from './errors.js'
import { readInt16BE, readInt32BE, readInt64BE, writeInt16BE, writeInt32BE, writeInt64BE } from './codec/int64.js'

/** Kafka's limit on in-flight batches of an idempotent producer: retries reach back this far. */
export const BATCHES_PER_PRODUCER = 5
/** Kafka's producer.id.expiration.ms: a producer silent for a day is forgotten at the next snapshot. */
export const EXPIRATION_MS = 24 * 60 * 60 * 1000
const SEQUENCE_SPAN = 2 ** 31
const ENTRY_BYTES = 46
/** Keeps a snapshot inside the 1 MiB a framed file may hold; the least recently used go first. */
const MAX_SNAPSHOT_PRODUCERS = 20_000

export interface ProducerBatch {
  firstSeq: number
  lastSeq: number
  baseOffset: number
  lastOffset: number
}

interface ProducerEntry {
  epoch: number
  batches: ProducerBatch[]
  lastTimestamp: number
}

/** `seq + n` in the sequence space, which wraps from 2^31-1 to 0 like Kafka's. */
export function addSequence(seq: number, n: number): number {
  return (seq + n) % SEQUENCE_SPAN
}

export class ProducerState {
  #producers = new Map<number, ProducerEntry>()

  get size(): number { return this.#producers.size }

  /**
   * Checks a batch of `count` records from `producerId` at `epoch` starting at `firstSeq`.
   * Returns the cached batch when it is a retry of one already written, null when it is new
   * and in order; throws otherwise. Changes nothing.
   */
  check(where: string, producerId: number, epoch: number, firstSeq: number, count: number): ProducerBatch | null {
    const entry = this.#producers.get(producerId)
    if (entry === undefined) return null
    if (epoch < entry.epoch) {
      throw new StrandError('PRODUCER_FENCED', `${where}: producer ${producerId} epoch ${epoch} is older than its current epoch ${entry.epoch}`)
    }
    if (epoch > entry.epoch) {
      if (firstSeq !== 0) throw new StrandError('OUT_OF_ORDER_SEQUENCE', `${where}: producer ${producerId} starts epoch ${epoch} at sequence ${firstSeq}, expected 0`)
      return null
    }
    const lastSeq = addSequence(firstSeq, count - 1)
    for (const b of entry.batches) if (b.firstSeq === firstSeq && b.lastSeq === lastSeq) return b
    const last = entry.batches[entry.batches.length - 1]
    const expected = last === undefined ? firstSeq : addSequence(last.lastSeq, 1)
    if (firstSeq !== expected) {
      throw new StrandError('OUT_OF_ORDER_SEQUENCE', `${where}: producer ${producerId} sent sequence ${firstSeq}, expected ${expected}`)
    }
    return null
  }

  /** Records a batch that was written (or replayed from the log). */
  update(producerId: number, epoch: number, firstSeq: number, count: number, baseOffset: number, timestamp: number): void {
    let entry = this.#producers.get(producerId)
    if (entry === undefined || epoch !== entry.epoch) {
      entry = { epoch, batches: [], lastTimestamp: timestamp }
      this.#producers.set(producerId, entry)
    }
    entry.batches.push({ firstSeq, lastSeq: addSequence(firstSeq, count - 1), baseOffset, lastOffset: baseOffset + count - 1 })
    if (entry.batches.length > BATCHES_PER_PRODUCER) entry.batches.shift()
    entry.lastTimestamp = Math.max(entry.lastTimestamp, timestamp)
  }

  /** The largest producer id known, or -1. */
  maxProducerId(): number {
    let max = -1
    for (const id of this.#producers.keys()) if (id > max) max = id
    return max
  }

  clear(): void {
    this.#producers.clear()
  }

  /** The snapshot payload for the state as of `offset`; producers silent since `now - EXPIRATION_MS` are dropped. */
  snapshot(offset: number, now: number): Buffer {
    const live = [...this.#producers].filter(([, e]) => now - e.lastTimestamp <= EXPIRATION_MS)
    if (live.length > MAX_SNAPSHOT_PRODUCERS) {
      live.sort((a, b) => b[1].lastTimestamp - a[1].lastTimestamp)
      live.length = MAX_SNAPSHOT_PRODUCERS
    }
    const out = Buffer.alloc(12 + live.length * ENTRY_BYTES)
    writeInt64BE(out, 0, offset)
    writeInt32BE(out, 8, live.length)
    let pos = 12
    for (const [id, e] of live) {
      const b = e.batches[e.batches.length - 1]
      writeInt64BE(out, pos, id)
      writeInt16BE(out, pos + 8, e.epoch)
      writeInt32BE(out, pos + 10, b.firstSeq)
      writeInt32BE(out, pos + 14, b.lastSeq)
      writeInt64BE(out, pos + 18, b.baseOffset)
      writeInt64BE(out, pos + 26, b.lastOffset)
      writeInt64BE(out, pos + 34, e.lastTimestamp)
      pos += ENTRY_BYTES
    }
    return out
  }

  /** Replaces the state with a snapshot's; returns the offset it is the state as of. Throws CORRUPT on a malformed payload. */
  load(payload: Buffer, file: string): number {
    const count = payload.length >= 12 ? readInt32BE(payload, 8) : -1
    if (count < 0 || payload.length !== 12 + count * ENTRY_BYTES) {
      throw new StrandError('CORRUPT', `${file}: producer snapshot of ${payload.length} bytes does not hold ${count} entries`)
    }
    const offset = readInt64BE(payload, 0)
    const producers = new Map<number, ProducerEntry>()
    for (let i = 0, pos = 12; i < count; i++, pos += ENTRY_BYTES) {
      const batch = { firstSeq: readInt32BE(payload, pos + 10), lastSeq: readInt32BE(payload, pos + 14), baseOffset: readInt64BE(payload, pos + 18), lastOffset: readInt64BE(payload, pos + 26) }
      producers.set(readInt64BE(payload, pos), { epoch: readInt16BE(payload, pos + 8), batches: [batch], lastTimestamp: readInt64BE(payload, pos + 34) })
    }
    this.#producers = producers
    return offset
  }
}
