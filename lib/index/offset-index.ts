/**
 * Sparse offset index of one segment: (offset − baseOffset, file position) pairs.
 *
 * ```
 * entry (8 bytes, little-endian): 0 relativeOffset int32 · 4 position int32
 * ```
 * An entry is added for the batch that takes the bytes appended since the last entry past
 * `indexIntervalBytes`, and for the first batch of a segment. Both fields strictly increase.
 * `lookup` returns the position of the last indexed batch whose relative offset ≤ the target;
 * the caller scans batch headers forward from there. Not thread-safe: the owning segment
 * serialises all calls.
 */
import { MappedIndex } from './mapped-index.js'

export const OFFSET_ENTRY_SIZE = 8

export class OffsetIndex extends MappedIndex {
  constructor(path: string, maxBytes: number, sealed: boolean) {
    super(path, OFFSET_ENTRY_SIZE, maxBytes, sealed)
  }

  relativeOffsetAt(i: number): number { return this.words[i * 2] }
  positionAt(i: number): number { return this.words[i * 2 + 1] }

  /** Relative offset of the last entry, or −1 when empty. */
  get lastRelativeOffset(): number { return this.entries === 0 ? -1 : this.relativeOffsetAt(this.entries - 1) }
  get lastPosition(): number { return this.entries === 0 ? -1 : this.positionAt(this.entries - 1) }

  append(relativeOffset: number, position: number): void {
    if (this.entries > 0 && (relativeOffset <= this.lastRelativeOffset || position <= this.lastPosition)) {
      throw new Error(`${this.path}: entry (${relativeOffset}, ${position}) does not follow (${this.lastRelativeOffset}, ${this.lastPosition})`)
    }
    this.put(relativeOffset, position)
  }

  /** Index of the last entry with relative offset ≤ `relativeOffset`; −1 when none. */
  find(relativeOffset: number): number {
    const words = this.words
    return this.search(relativeOffset, (j) => words[j * 2])
  }

  /** File position of the last entry with relative offset ≤ `relativeOffset`; 0 when none. */
  lookup(relativeOffset: number): number {
    const words = this.words
    const i = this.search(relativeOffset, (j) => words[j * 2])
    return i < 0 ? 0 : words[i * 2 + 1]
  }

  /** Drops entries at or past `relativeOffset` (the log is truncated there). */
  truncateTo(relativeOffset: number): void {
    const words = this.words
    this.truncateEntries(this.search(relativeOffset - 1, (j) => words[j * 2]) + 1)
  }

  /** Drops entries that point at or past `position` (the log file is cut there). */
  truncateToPosition(position: number): void {
    let n = this.entries
    while (n > 0 && this.positionAt(n - 1) >= position) n--
    this.truncateEntries(n)
  }

  /**
   * Cheap consistency check for an index read from disk: entries strictly increase and
   * point inside a log of `logSize` bytes. Returns why not, or null. O(entries) over the
   * mapping, no I/O beyond page faults; a failure means rebuild, not error.
   */
  check(logSize: number): string | null {
    let prevRel = -1
    let prevPos = -1
    for (let i = 0; i < this.entries; i++) {
      const rel = this.relativeOffsetAt(i)
      const pos = this.positionAt(i)
      if (rel <= prevRel || pos <= prevPos || pos >= logSize) return `entry ${i} (${rel}, ${pos}) after (${prevRel}, ${prevPos}) in a log of ${logSize} bytes`
      prevRel = rel
      prevPos = pos
    }
    return null
  }
}
