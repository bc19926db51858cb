/**
 * Sparse time index of one segment: (largest timestamp so far, relative offset) pairs.
 *
 * ```
 * entry (12 bytes, little-endian): 0 timestamp int64 · 8 relativeOffset int32
 * ```
 * An entry is written only when a batch raises the segment's largest timestamp, so
 * timestamps increase and every batch before an entry's offset has a timestamp ≤ that
 * entry's. `lookupBefore(t)` therefore names a batch before which no record can have a
 * timestamp ≥ t. When the segment seals, a final entry (largest timestamp, last batch) is
 * added: its timestamp may equal the one before it, and it lets a reader check that the file
 * is whole (it must end at the segment's last batch). Not thread-safe.
 */
import { MappedIndex } from './mapped-index.js'

export const TIME_ENTRY_SIZE = 12
const TWO_32 = 4294967296

export class TimeIndex extends MappedIndex {
  constructor(path: string, maxBytes: number, sealed: boolean) {
    super(path, TIME_ENTRY_SIZE, maxBytes, sealed)
  }

  timestampAt(i: number): number { return this.words[i * 3 + 1] * TWO_32 + (this.words[i * 3] >>> 0) }
  relativeOffsetAt(i: number): number { return this.words[i * 3 + 2] }

  get lastTimestamp(): number { return this.entries === 0 ? -1 : this.timestampAt(this.entries - 1) }
  get lastRelativeOffset(): number { return this.entries === 0 ? -1 : this.relativeOffsetAt(this.entries - 1) }

  /** Appends (timestamp, relativeOffset) if the timestamp is larger than the last entry's. */
  maybeAppend(timestamp: number, relativeOffset: number): void {
    if (timestamp <= this.lastTimestamp) return
    if (this.entries > 0 && relativeOffset < this.lastRelativeOffset) {
      throw new Error(`${this.path}: relative offset ${relativeOffset} goes back from ${this.lastRelativeOffset}`)
    }
    // The final entry written at seal may repeat the last relative offset with a larger timestamp.
    if (this.entries > 0 && relativeOffset === this.lastRelativeOffset) {
      this.truncateEntries(this.entries - 1)
    }
    this.#put(timestamp, relativeOffset)
  }

  #put(timestamp: number, relativeOffset: number): void {
    const hi = Math.floor(timestamp / TWO_32)
    this.put(timestamp - hi * TWO_32, hi, relativeOffset)
  }

  /**
   * The final entry written at seal: (the segment's largest timestamp, its last batch).
   * Replaces an entry for the same batch; otherwise appended, even when the timestamp equals
   * the last entry's.
   */
  appendFinal(timestamp: number, relativeOffset: number): void {
    if (this.entries > 0) {
      if (timestamp < this.lastTimestamp || relativeOffset < this.lastRelativeOffset) {
        throw new Error(`${this.path}: final entry (${timestamp}, ${relativeOffset}) goes back from (${this.lastTimestamp}, ${this.lastRelativeOffset})`)
      }
      if (relativeOffset === this.lastRelativeOffset) this.truncateEntries(this.entries - 1)
    }
    this.#put(timestamp, relativeOffset)
  }

  /**
   * Drops the seal's final entry from an index whose segment takes appends again: it names
   * the last batch without that batch holding its timestamp, and it may repeat the timestamp
   * before it, which only a last entry may. Losing an ordinary entry instead costs nothing:
   * the index is sparse.
   */
  dropFinal(): void {
    if (this.entries > 0) this.truncateEntries(this.entries - 1)
  }

  /** Relative offset of the last entry with timestamp < `timestamp`, or −1 when none. */
  lookupBefore(timestamp: number): number {
    const i = this.findBefore(timestamp)
    return i < 0 ? -1 : this.relativeOffsetAt(i)
  }

  /** Index of the last entry with timestamp < `timestamp`, or −1 when none. */
  findBefore(timestamp: number): number {
    return this.search(timestamp - 1, (j) => this.timestampAt(j))
  }

  /** Drops entries at or past `relativeOffset`. */
  truncateTo(relativeOffset: number): void {
    let n = this.entries
    while (n > 0 && this.relativeOffsetAt(n - 1) >= relativeOffset) n--
    this.truncateEntries(n)
  }

  /** Same contract as OffsetIndex.check; `maxRelativeOffset` is the segment's last relative offset. */
  check(maxRelativeOffset: number): string | null {
    let prevTs = -1
    let prevRel = -1
    for (let i = 0; i < this.entries; i++) {
      const ts = this.timestampAt(i)
      const rel = this.relativeOffsetAt(i)
      // Only the final entry (written at seal) may repeat the timestamp before it.
      const tsOk = ts > prevTs || (ts === prevTs && i === this.entries - 1 && rel > prevRel)
      if (!tsOk || rel < 0 || rel < prevRel || rel > maxRelativeOffset) return `entry ${i} (${ts}, ${rel}) after (${prevTs}, ${prevRel}), last relative offset ${maxRelativeOffset}`
      prevTs = ts
      prevRel = rel
    }
    return null
  }
}
