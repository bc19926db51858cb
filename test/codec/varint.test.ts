import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  type Cursor, readVarint, readVarlong, sizeOfVarint, sizeOfVarlong, writeVarint, writeVarlong
} from '../../lib/codec/varint.js'
import { rng } from '../helpers.js'

/**
 * Reference zig-zag LEB128 encoder in BigInt, written from protobuf's definition
 * ((n << 1) ^ (n >> 63), then 7 bits per byte, low first), independent of the code under test.
 */
function reference(v: number): number[] {
  const n = BigInt(v)
  let u = BigInt.asUintN(64, (n << 1n) ^ (n >> 63n))
  const out: number[] = []
  while (u >= 0x80n) {
    out.push(Number(u & 0x7fn) | 0x80)
    u >>= 7n
  }
  out.push(Number(u))
  return out
}

const hex = (bytes: ArrayLike<number>): string => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ')

function encodeVarint(v: number): Uint8Array {
  const buf = new Uint8Array(16)
  const end = writeVarint(buf, 0, v)
  return buf.subarray(0, end)
}

function encodeVarlong(v: number): Uint8Array {
  const buf = new Uint8Array(16)
  const end = writeVarlong(buf, 0, v)
  return buf.subarray(0, end)
}

const INT32_EDGES = [
  0, 1, -1, 2, -2, 63, -64, 64, -65, 127, 128, -128, 150, 8191, 8192, -8193,
  2 ** 20, -(2 ** 20), 2 ** 27 - 1, 2 ** 27, 2 ** 28, -(2 ** 28) - 1,
  2 ** 30 - 1, 2 ** 30, 2 ** 30 + 1, -(2 ** 30) + 1, -(2 ** 30), -(2 ** 30) - 1,
  2 ** 31 - 2, 2 ** 31 - 1, -(2 ** 31), -(2 ** 31) + 1
]

// 2^30 is where writeVarlong/sizeOfVarlong switch from the int32 path to arithmetic.
const INT64_EDGES = [
  ...INT32_EDGES,
  2 ** 31, -(2 ** 31) - 1, 2 ** 32 - 1, 2 ** 32, -(2 ** 32), 2 ** 35, -(2 ** 35) - 1,
  2 ** 42 - 1, 2 ** 42, 2 ** 49 - 1, 2 ** 49, 1_700_000_000_000, -1_700_000_000_000,
  2 ** 52 - 1, 2 ** 52, -(2 ** 52) + 1, -(2 ** 52),
  2 ** 53 - 2, Number.MAX_SAFE_INTEGER
]

test('varint encodings match protobuf zig-zag (sint32) bytes', () => {
  const known: Array<[number, number[]]> = [
    [0, [0x00]],
    [-1, [0x01]],
    [1, [0x02]],
    [-2, [0x03]],
    [2, [0x04]],
    [63, [0x7e]],
    [-64, [0x7f]],
    [64, [0x80, 0x01]],
    [150, [0xac, 0x02]],
    [-150, [0xab, 0x02]],
    [2147483647, [0xfe, 0xff, 0xff, 0xff, 0x0f]],
    [-2147483648, [0xff, 0xff, 0xff, 0xff, 0x0f]]
  ]
  for (const [v, bytes] of known) {
    assert.is(hex(encodeVarint(v)), hex(bytes), `varint ${v}`)
    assert.is(hex(encodeVarlong(v)), hex(bytes), `varlong ${v}`)
  }
})

test('varlong encodings match protobuf zig-zag (sint64) bytes beyond int32', () => {
  const known: Array<[number, number[]]> = [
    [2 ** 31, [0x80, 0x80, 0x80, 0x80, 0x10]],
    [-(2 ** 31) - 1, [0x81, 0x80, 0x80, 0x80, 0x10]],
    [2 ** 32, [0x80, 0x80, 0x80, 0x80, 0x20]],
    [Number.MAX_SAFE_INTEGER, [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f]]
  ]
  for (const [v, bytes] of known) assert.is(hex(encodeVarlong(v)), hex(bytes), `varlong ${v}`)
})

test('varint round trips int32 edges, and sizeOfVarint equals the bytes written', () => {
  for (const v of INT32_EDGES) {
    const bytes = encodeVarint(v)
    assert.is(bytes.length, sizeOfVarint(v), `size of ${v}`)
    assert.is(hex(bytes), hex(reference(v)), `bytes of ${v}`)
    const c: Cursor = { pos: 0 }
    assert.is(readVarint(bytes, c, bytes.length), v, `value of ${v}`)
    assert.is(c.pos, bytes.length, `cursor after ${v}`)
  }
})

test('varlong round trips edges around 2^30, 2^31, 2^32 and 2^53, and sizeOfVarlong equals the bytes written', () => {
  for (const v of INT64_EDGES) {
    const bytes = encodeVarlong(v)
    assert.is(bytes.length, sizeOfVarlong(v), `size of ${v}`)
    assert.is(hex(bytes), hex(reference(v)), `bytes of ${v}`)
    const c: Cursor = { pos: 0 }
    assert.is(readVarlong(bytes, c, bytes.length), v, `value of ${v}`)
    assert.is(c.pos, bytes.length, `cursor after ${v}`)
  }
})

test('varlongs whose zig-zag form passes 2^53 decode as NaN, never as a wrong number', () => {
  // Zig-zag maps v < -2^52 to 2|v| - 1 > 2^53, which a double cannot hold; strand's encoder
  // never writes one (timestamps are bounded to 2^52), so the decoder must refuse them.
  for (const v of [-(2 ** 52) - 1, -(2 ** 52) - 3, -(2 ** 53) + 3, -Number.MAX_SAFE_INTEGER]) {
    const bytes = Uint8Array.from(reference(v))
    assert.ok(Number.isNaN(readVarlong(bytes, { pos: 0 }, bytes.length)), `value of ${v}`)
  }
})

test('varint round trips random int32 values with the reference bytes', () => {
  const seed = 0x5eed01
  const rand = rng(seed)
  for (let i = 0; i < 5000; i++) {
    // Spread over all magnitudes: a random bit width, then a random value of that width.
    const bits = Math.floor(rand() * 32)
    const v = (Math.floor(rand() * 2 ** bits) * (rand() < 0.5 ? -1 : 1)) | 0
    const bytes = encodeVarint(v)
    assert.is(bytes.length, sizeOfVarint(v), `seed ${seed}, size of ${v}`)
    assert.is(hex(bytes), hex(reference(v)), `seed ${seed}, bytes of ${v}`)
    assert.is(readVarint(bytes, { pos: 0 }, bytes.length), v, `seed ${seed}, value of ${v}`)
  }
})

test('varlong round trips random values in [-2^52, 2^53) with the reference bytes', () => {
  const seed = 0x5eed02
  const rand = rng(seed)
  for (let i = 0; i < 5000; i++) {
    const bits = Math.floor(rand() * 54)
    const neg = rand() < 0.5
    const v = neg ? -Math.floor(rand() * Math.min(2 ** bits, 2 ** 52)) : Math.floor(rand() * 2 ** bits)
    const bytes = encodeVarlong(v)
    assert.is(bytes.length, sizeOfVarlong(v), `seed ${seed}, size of ${v}`)
    assert.is(hex(bytes), hex(reference(v)), `seed ${seed}, bytes of ${v}`)
    assert.is(readVarlong(bytes, { pos: 0 }, bytes.length), v, `seed ${seed}, value of ${v}`)
  }
})

test('consecutive varints read back in order with one cursor, each write returning the next position', () => {
  const values = [0, -1, 300, -(2 ** 31), 2 ** 31 - 1, 7]
  const longs = [2 ** 40, -5, Number.MAX_SAFE_INTEGER, 0]
  const buf = new Uint8Array(128)
  let p = 3 // not at 0: positions are absolute
  for (const v of values) {
    const next = writeVarint(buf, p, v)
    assert.is(next - p, sizeOfVarint(v), `size of ${v}`)
    p = next
  }
  for (const v of longs) {
    const next = writeVarlong(buf, p, v)
    assert.is(next - p, sizeOfVarlong(v), `size of ${v}`)
    p = next
  }
  const c: Cursor = { pos: 3 }
  for (const v of values) assert.is(readVarint(buf, c, p), v)
  for (const v of longs) assert.is(readVarlong(buf, c, p), v)
  assert.is(c.pos, p)
})

test('readVarint returns NaN for a varint longer than 5 bytes', () => {
  const tooLong = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0x01])
  assert.ok(Number.isNaN(readVarint(tooLong, { pos: 0 }, tooLong.length)))
  const allContinuation = new Uint8Array(10).fill(0x80)
  assert.ok(Number.isNaN(readVarint(allContinuation, { pos: 0 }, allContinuation.length)))
})

test('readVarint returns NaN when the varint runs past end, even if the buffer goes on', () => {
  const bytes = new Uint8Array([0xac, 0x02, 0x00])
  assert.ok(Number.isNaN(readVarint(bytes, { pos: 0 }, 1)), 'end cuts the varint')
  assert.ok(Number.isNaN(readVarint(bytes, { pos: 0 }, 0)), 'nothing left')
  assert.ok(Number.isNaN(readVarint(new Uint8Array([0x80]), { pos: 0 }, 1)), 'continuation bit on the last byte')
  assert.ok(Number.isNaN(readVarint(bytes, { pos: 3 }, 3)), 'cursor already at end')
  assert.is(readVarint(bytes, { pos: 0 }, 2), 150, 'the same bytes with room are fine')
})

test('readVarlong returns NaN for a varlong longer than a safe integer needs (9+ bytes)', () => {
  const nine = new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01])
  assert.ok(Number.isNaN(readVarlong(nine, { pos: 0 }, nine.length)))
  const ten = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])
  assert.ok(Number.isNaN(readVarlong(ten, { pos: 0 }, ten.length)), 'protobuf\'s 10-byte maximum is out of range here')
})

test('readVarlong returns NaN when the varlong runs past end', () => {
  const bytes = encodeVarlong(2 ** 40)
  for (let end = 0; end < bytes.length; end++) {
    assert.ok(Number.isNaN(readVarlong(bytes, { pos: 0 }, end)), `end ${end} of ${bytes.length}`)
  }
  assert.ok(Number.isNaN(readVarlong(new Uint8Array([0xff]), { pos: 0 }, 1)))
})

test('readVarlong returns NaN for an 8-byte varlong whose value is beyond 2^53', () => {
  // Zig-zag 2^55 = the value 2^54: fits the 8 bytes the reader accepts, but is not a safe integer.
  const bytes = new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40])
  const v = readVarlong(bytes, { pos: 0 }, bytes.length)
  assert.ok(Number.isNaN(v), `decoded ${v}`)
})

test.run()
