/**
 * 64-bit big-endian integers as JavaScript numbers. Offsets and timestamps are safe
 * integers (< 2^53); reading them as a high and a low 32-bit half avoids a BigInt per
 * field on the batch-header hot path.
 */
const TWO_32 = 4294967296

export function readInt64BE(buf: Uint8Array, pos: number): number {
  const hi = (buf[pos] << 24) | (buf[pos + 1] << 16) | (buf[pos + 2] << 8) | buf[pos + 3]
  const lo = ((buf[pos + 4] << 24) | (buf[pos + 5] << 16) | (buf[pos + 6] << 8) | buf[pos + 7]) >>> 0
  return hi * TWO_32 + lo
}

export function writeInt64BE(buf: Uint8Array, pos: number, v: number): void {
  const hi = Math.floor(v / TWO_32)
  const lo = v - hi * TWO_32
  writeInt32BE(buf, pos, hi)
  writeInt32BE(buf, pos + 4, lo)
}

export function readInt32BE(buf: Uint8Array, pos: number): number {
  return (buf[pos] << 24) | (buf[pos + 1] << 16) | (buf[pos + 2] << 8) | buf[pos + 3]
}

export function readUInt32BE(buf: Uint8Array, pos: number): number {
  return readInt32BE(buf, pos) >>> 0
}

export function writeInt32BE(buf: Uint8Array, pos: number, v: number): void {
  buf[pos] = v >>> 24
  buf[pos + 1] = v >>> 16
  buf[pos + 2] = v >>> 8
  buf[pos + 3] = v
}

export function readInt16BE(buf: Uint8Array, pos: number): number {
  return ((buf[pos] << 24) | (buf[pos + 1] << 16)) >> 16
}

export function writeInt16BE(buf: Uint8Array, pos: number, v: number): void {
  buf[pos] = v >>> 8
  buf[pos + 1] = v
}
