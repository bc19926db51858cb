/**
 * What the suite writes, and how every reader checks it.
 *
 * Record i of V bytes:
 *
 * | bytes      | content                                                          |
 * |------------|------------------------------------------------------------------|
 * | 0–3        | i, uint32 little-endian                                          |
 * | 4 … V−2    | noise(i mod (SLOTS × perBatch), j): incompressible, so no system |
 * |            | gains by compressing (leveldb's snappy would, on a pattern)      |
 * | V−1        | (7i + 3) & 0xff                                                  |
 *
 * Writers reuse SLOTS pre-filled batches and restamp only bytes 0–3 and V−1 of each value, so
 * the timed loops measure the system, not a payload generator. The noise depends on i only
 * through i mod (SLOTS × perBatch), which is exactly which slot and position a record takes.
 *
 * A reader checks, per record: the length, the index (its position, or for unordered W2 that
 * it was not seen before), the last byte, and one noise byte whose position rotates with i, so
 * that across records every byte position is checked. It also sums index + last byte + that
 * noise byte into a checksum compared, at the end, with the sum computed from the layout.
 */
import type { Batch, Value } from './system.js'

/** Pre-filled batches per size. ≥ the widest concurrency (64 writers), so a slot is never reused in flight. */
export const SLOTS = 64

/** A 32-bit integer hash (lowbias32): cheap, and its low byte looks random. */
function mix(x: number): number {
  x ^= x >>> 16
  x = Math.imul(x, 0x7feb352d)
  x ^= x >>> 15
  x = Math.imul(x, 0x846ca68b)
  x ^= x >>> 16
  return x >>> 0
}

export function noiseByte(m: number, j: number): number {
  return mix(m * 4099 + j) & 0xff
}

export function lastByte(i: number): number {
  return (i * 7 + 3) & 0xff
}

/** Record i's rotating check position (among the noise bytes). */
export function checkPosition(i: number, valueBytes: number): number {
  return 4 + (i % (valueBytes - 5))
}

/** The bytes record `i` must hold, built slowly from the layout: for W5's one-record appends and for tests. */
export function makeValue(i: number, valueBytes: number, perBatch: number): Buffer {
  const v = Buffer.allocUnsafe(valueBytes)
  const m = i % (SLOTS * perBatch)
  for (let j = 4; j < valueBytes - 1; j++) v[j] = noiseByte(m, j)
  v.writeUInt32LE(i >>> 0, 0)
  v[valueBytes - 1] = lastByte(i)
  return v
}

/** SLOTS batches of `perBatch` values each; `batch(b)` stamps slot b % SLOTS for records b × perBatch … */
export class Payloads {
  readonly #slots: Array<{ values: Buffer[], bytes: Buffer }> = []

  constructor(readonly valueBytes: number, readonly perBatch: number) {
    if (valueBytes < 16) throw new RangeError(`Expected valueBytes >= 16, got ${valueBytes}`)
    for (let s = 0; s < SLOTS; s++) {
      const bytes = Buffer.allocUnsafe(valueBytes * perBatch)
      const values: Buffer[] = []
      for (let k = 0; k < perBatch; k++) {
        const v = bytes.subarray(k * valueBytes, (k + 1) * valueBytes)
        const m = s * perBatch + k
        for (let j = 4; j < valueBytes - 1; j++) v[j] = noiseByte(m, j)
        values.push(v)
      }
      this.#slots.push({ values, bytes })
    }
  }

  /** Batch number `b`: records b × perBatch … (b + 1) × perBatch − 1, in slot b % SLOTS. */
  batch(b: number): Batch {
    const slot = this.#slots[b % SLOTS]
    const first = b * this.perBatch
    const values = slot.values
    const last = this.valueBytes - 1
    for (let k = 0; k < values.length; k++) {
      const v = values[k]
      const i = first + k
      v.writeUInt32LE(i >>> 0, 0)
      v[last] = lastByte(i)
    }
    return { first, values, bytes: slot.bytes }
  }
}

/** The checksum a reader of records [first, first + count) must arrive at. */
export function expectedChecksum(first: number, count: number, valueBytes: number, perBatch: number): number {
  const period = SLOTS * perBatch
  let sum = 0
  for (let i = first; i < first + count; i++) sum = (sum + checksumTerm(i, valueBytes, period)) >>> 0
  return sum
}

/** What a verified read saw; goes into the result JSON. */
export interface Verified {
  records: number
  checksum: number
}

/**
 * Checks one value against the layout: its length, last byte and rotating noise byte. Returns
 * the index it carries, or -1 when anything is off. `period` is SLOTS × perBatch.
 */
export function checkValue(v: Value | undefined | null, valueBytes: number, period: number): number {
  if (v === undefined || v === null || v.length !== valueBytes) return -1
  const i = (v[0] | (v[1] << 8) | (v[2] << 16) | (v[3] << 24)) >>> 0
  const p = checkPosition(i, valueBytes)
  if (v[valueBytes - 1] !== lastByte(i) || v[p] !== noiseByte(i % period, p)) return -1
  return i
}

/** Record i's share of the checksum. */
export function checksumTerm(i: number, valueBytes: number, period: number): number {
  return i + lastByte(i) + noiseByte(i % period, checkPosition(i, valueBytes))
}

/**
 * Checks records as a reader sees them. Ordered: the n-th record seen must be record
 * `first + n`. Unordered (W2's concurrent writers): each record of [first, first + total) once.
 */
export class Checker {
  #seen = 0
  #sum = 0
  #error: string | null = null
  readonly #period: number
  readonly #bitmap: Uint8Array | null

  constructor(readonly what: string, readonly valueBytes: number, readonly perBatch: number, readonly first: number, readonly total: number, ordered = true) {
    this.#period = SLOTS * perBatch
    this.#bitmap = ordered ? null : new Uint8Array(total)
  }

  get seen(): number { return this.#seen }

  /** Checks the next record; returns the index it carries (-1 when it is damaged). */
  see(v: Value): number {
    const n = this.#seen++
    const i = checkValue(v, this.valueBytes, this.#period)
    if (i < 0) {
      this.#fail(`record #${n} (expected index ${this.first + n}): ${v?.length ?? 'no'} bytes, or payload bytes differ from what was written`)
      return -1
    }
    if (this.#bitmap === null) {
      if (i !== this.first + n) this.#fail(`record #${n} carries index ${i}, expected ${this.first + n}`)
    } else {
      const k = i - this.first
      if (k < 0 || k >= this.total) this.#fail(`record #${n} carries index ${i}, outside [${this.first}, ${this.first + this.total})`)
      else if (this.#bitmap[k] !== 0) this.#fail(`record ${i} seen twice`)
      else this.#bitmap[k] = 1
    }
    this.#sum = (this.#sum + checksumTerm(i, this.valueBytes, this.#period)) >>> 0
    return i
  }

  /** Throws unless exactly `total` good records were seen and the checksum matches. */
  finish(): Verified {
    if (this.#error !== null) throw new Error(`${this.what}: ${this.#error}`)
    const want = expectedChecksum(this.first, this.total, this.valueBytes, this.perBatch)
    if (this.#seen !== this.total || this.#sum !== want) {
      throw new Error(`${this.what}: read ${this.#seen}/${this.total} records, checksum ${this.#sum} != ${want}`)
    }
    return { records: this.#seen, checksum: this.#sum }
  }

  #fail(why: string): void {
    this.#error ??= why
  }
}
