/**
 * A partition's leader epochs: for each epoch that wrote to this log, the offset of its first
 * batch (Kafka's LeaderEpochFileCache, KIP-101). It answers "where does epoch E end in this
 * log?", which is how a follower finds where its log diverges from a new leader's without
 * trusting its high watermark.
 *
 * Invariants: epochs strictly increase, and so do start offsets; every entry's start offset
 * is below the log end offset once its batch is written (a leader's entry for an epoch it
 * has not written in yet starts at the log end offset). Persisted by Partition as the `STLE`
 * frame (docs/format.md) before any batch of a new epoch is appended.
 */
import { corrupt } from './errors.js'
import { readInt64BE, writeInt64BE } from './codec/int64.js'

export interface EpochEntry {
  epoch: number
  startOffset: number
}

/** Where an epoch ends: `epoch` is the largest known epoch ≤ the one asked for (-1 if none). */
export interface EpochEndOffset {
  epoch: number
  endOffset: number
}

export const UNDEFINED_EPOCH = -1

export class LeaderEpochCache {
  #entries: EpochEntry[] = []

  get entries(): readonly EpochEntry[] { return this.#entries }
  get isEmpty(): boolean { return this.#entries.length === 0 }
  /** The newest epoch, or -1. */
  get latestEpoch(): number {
    return this.#entries.length === 0 ? UNDEFINED_EPOCH : this.#entries[this.#entries.length - 1].epoch
  }

  /**
   * Records that `epoch` starts at `startOffset`. Returns whether anything changed: an epoch
   * at or below the latest is ignored (its batches follow an entry that exists already).
   */
  assign(epoch: number, startOffset: number): boolean {
    if (epoch < 0) return false
    const last = this.#entries[this.#entries.length - 1]
    if (last !== undefined && (epoch <= last.epoch)) return false
    // A later epoch that starts no later than the last entry replaces it (the earlier epoch
    // wrote nothing that survived): start offsets must strictly increase.
    while (this.#entries.length > 0 && this.#entries[this.#entries.length - 1].startOffset >= startOffset) this.#entries.pop()
    this.#entries.push({ epoch, startOffset })
    return true
  }

  /**
   * Where `epoch` ends in a log ending at `logEndOffset`: the start of the next larger epoch,
   * or the log end offset for the latest. Asked for an epoch it does not have, it answers for
   * the largest one below it; asked for one above all it knows, `{ epoch: -1, endOffset: -1 }`.
   */
  endOffsetFor(epoch: number, logEndOffset: number): EpochEndOffset {
    const e = this.#entries
    if (epoch < 0 || e.length === 0) return { epoch: UNDEFINED_EPOCH, endOffset: -1 }
    if (epoch === e[e.length - 1].epoch) return { epoch, endOffset: logEndOffset }
    // The first entry with a larger epoch: the requested epoch ends where it starts.
    let hi = 0
    while (hi < e.length && e[hi].epoch <= epoch) hi++
    if (hi === e.length) return { epoch: UNDEFINED_EPOCH, endOffset: -1 }
    if (hi === 0) return { epoch, endOffset: e[0].startOffset }
    return { epoch: e[hi - 1].epoch, endOffset: e[hi].startOffset }
  }

  /** Drops entries starting at or past `offset` (the log was cut there). Returns whether any went. */
  truncateFromEnd(offset: number): boolean {
    const before = this.#entries.length
    while (this.#entries.length > 0 && this.#entries[this.#entries.length - 1].startOffset >= offset) this.#entries.pop()
    return this.#entries.length !== before
  }

  /**
   * The log now starts at `offset`: entries wholly before it go, and the one it falls in now
   * starts there. Returns whether anything changed.
   */
  truncateFromStart(offset: number): boolean {
    const e = this.#entries
    let i = 0
    while (i + 1 < e.length && e[i + 1].startOffset <= offset) i++
    if (e.length === 0 || e[0].startOffset >= offset) return false
    e.splice(0, i)
    e[0] = { epoch: e[0].epoch, startOffset: offset }
    return true
  }

  clear(): void {
    this.#entries = []
  }

  encode(): Buffer {
    const out = Buffer.alloc(4 + 12 * this.#entries.length)
    out.writeInt32BE(this.#entries.length, 0)
    this.#entries.forEach((x, i) => {
      out.writeInt32BE(x.epoch, 4 + 12 * i)
      writeInt64BE(out, 8 + 12 * i, x.startOffset)
    })
    return out
  }

  /** Replaces the entries with a decoded `STLE` payload; CORRUPT if it breaks the invariants. */
  load(payload: Buffer, file: string): void {
    if (payload.length < 4) throw corrupt(file, `leader epoch payload of ${payload.length} bytes`)
    const count = payload.readInt32BE(0)
    if (count < 0 || payload.length !== 4 + 12 * count) throw corrupt(file, `${count} leader epoch entries in ${payload.length} bytes`)
    const entries: EpochEntry[] = []
    for (let i = 0; i < count; i++) {
      const epoch = payload.readInt32BE(4 + 12 * i)
      const startOffset = readInt64BE(payload, 8 + 12 * i)
      const prev = entries[entries.length - 1]
      if (epoch < 0 || startOffset < 0 || (prev !== undefined && (epoch <= prev.epoch || startOffset <= prev.startOffset))) {
        throw corrupt(file, `leader epoch entry ${i} (${epoch}, ${startOffset}) does not follow the one before it`)
      }
      entries.push({ epoch, startOffset })
    }
    this.#entries = entries
  }
}
