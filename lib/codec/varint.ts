/**
 * Zig-zag LEB128 varints, as in protobuf and Kafka's record format.
 *
 * strand's numbers are JavaScript numbers, not BigInts: offsets and timestamps stay below
 * 2^53, so a varlong is encoded with arithmetic instead of 64-bit shifts. The int32 paths
 * use bit operations and are the hot ones (every record has four or more varints).
 *
 * Decoders return the value and leave the position in `cursor.pos`, so no object is
 * allocated per varint.
 */

/** Reused position holder for the decoders: one per reader, never per value. */
export interface Cursor { pos: number }

/** Bytes a zig-zag varint of the int32 `v` takes (1–5). */
export function sizeOfVarint(v: number): number {
  let u = ((v << 1) ^ (v >> 31)) >>> 0
  let n = 1
  while (u >= 0x80) { u >>>= 7; n++ }
  return n
}

/** Bytes a zig-zag varlong of the safe integer `v` takes (1–10). */
export function sizeOfVarlong(v: number): number {
  if (v >= -0x40000000 && v < 0x40000000) return sizeOfVarint(v)
  let u = v >= 0 ? v * 2 : -v * 2 - 1
  let n = 1
  while (u >= 128) { u = Math.floor(u / 128); n++ }
  return n
}

/** Writes the int32 `v` at `pos`; returns the position after it. */
export function writeVarint(buf: Uint8Array, pos: number, v: number): number {
  let u = ((v << 1) ^ (v >> 31)) >>> 0
  while (u >= 0x80) {
    buf[pos++] = (u & 0x7f) | 0x80
    u >>>= 7
  }
  buf[pos++] = u
  return pos
}

/**
 * Writes `v` at `pos`; returns the position after it. Exact for −2^52 ≤ v ≤ 2^53 − 1; strand's
 * timestamp deltas stay within ±2^52 (record-batch.ts bounds timestamps to that).
 */
export function writeVarlong(buf: Uint8Array, pos: number, v: number): number {
  if (v >= -0x40000000 && v < 0x40000000) return writeVarint(buf, pos, v)
  let u = v >= 0 ? v * 2 : -v * 2 - 1
  while (u >= 128) {
    buf[pos++] = (u % 128) | 0x80
    u = Math.floor(u / 128)
  }
  buf[pos++] = u
  return pos
}

/**
 * Reads an int32 varint at `c.pos`, advancing it. Returns NaN when the varint is longer than
 * 5 bytes or runs past `end`: callers treat NaN as corruption.
 */
export function readVarint(buf: Uint8Array, c: Cursor, end: number): number {
  let pos = c.pos
  let u = 0
  let shift = 0
  for (;;) {
    if (pos >= end || shift > 28) return NaN
    const b = buf[pos++]
    u |= (b & 0x7f) << shift
    if (b < 0x80) break
    shift += 7
  }
  c.pos = pos
  return (u >>> 1) ^ -(u & 1)
}

/** Reads a varlong at `c.pos`, advancing it. NaN when malformed or beyond 2^53. */
export function readVarlong(buf: Uint8Array, c: Cursor, end: number): number {
  let pos = c.pos
  let u = 0
  let mul = 1
  for (;;) {
    if (pos >= end || mul > 2 ** 49) return NaN
    const b = buf[pos++]
    u += (b & 0x7f) * mul
    if (b < 0x80) break
    mul *= 128
  }
  // Past 2^53 only even sums are exact, so a negative value (odd zig-zag form) must stay
  // below it and a positive one below 2^54. Anything else cannot be told apart from rounding.
  if (buf[c.pos] & 1 ? u > Number.MAX_SAFE_INTEGER : u > 2 ** 54 - 2) return NaN
  c.pos = pos
  // Zig-zag back: even → non-negative, odd → negative. Arithmetic, since u may exceed 2^32.
  return u % 2 === 0 ? u / 2 : -(u + 1) / 2
}
