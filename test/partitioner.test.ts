import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { StrandError } from '../lib/errors.js'
import { murmur2, toPositive } from '../lib/murmur2.js'
import { DefaultPartitioner, type DefaultPartitionerOptions, type NullKeyStrategy } from '../lib/partitioner.js'

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)

// librdkafka's partitioner test (confluentinc/librdkafka tests/0048-partitioner.c,
// commit eb9b0e2123cc4c807e27980dc51deefd6bf3f8f2): the positive hash of each
// key, "using tests/java/Murmur2Cli", i.e. the Java client, and a partition
// expected at `hash % part_cnt` for part_cnt 7 and 17. "23456" is its
// `unaligned+1` of "123456".
const LIBRDKAFKA_PLACEMENT: Array<[string, number]> = [
  ['', 0x106e08d9],
  ['23456', 0x058d780f],
  ['this is another string with more length to it perhaps', 0x4f7703da],
  ['hejsan', 0x5ec19395]
]

function expectInvalid(fn: () => unknown, name: string): void {
  try {
    fn()
  } catch (err) {
    assert.instance(err, StrandError)
    assert.is((err as StrandError).code, 'INVALID_ARGUMENT')
    assert.match((err as StrandError).message, `Expected \`${name}\` to be`)
    return
  }
  assert.unreachable(`expected INVALID_ARGUMENT for \`${name}\``)
}

test('keyed records land where the Java client puts them (librdkafka vectors)', () => {
  const p = new DefaultPartitioner()
  for (const n of [7, 17]) {
    for (const [key, positiveHash] of LIBRDKAFKA_PLACEMENT) {
      assert.is(p.partition(utf8(key), n), positiveHash % n, `${JSON.stringify(key)} of ${n}`)
    }
  }
})

test('keyed placement is toPositive(murmur2(key)) % n for Kafka test keys', () => {
  const p = new DefaultPartitioner()
  const keys = ['21', 'foobar', 'a-little-bit-long-string', 'a-little-bit-longer-string', 'abc', 'kafka', '100:48069']
  for (const n of [1, 2, 3, 6, 12, 50, 1000]) {
    for (const key of keys) {
      const bytes = utf8(key)
      assert.is(p.partition(bytes, n), toPositive(murmur2(bytes)) % n, `${key} of ${n}`)
    }
  }
  // '21' hashes negative: Math.abs would give 973932308 % 12 = 8; Kafka clears the sign bit and gets 0.
  assert.is(p.partition(utf8('21'), 12), 0)
})

test('keyed placement ignores batches and null-key records', () => {
  const key = utf8('order-42')
  const expected = toPositive(murmur2(key)) % 6
  for (const nullKey of ['sticky', 'round-robin'] as NullKeyStrategy[]) {
    const p = new DefaultPartitioner({ nullKey })
    for (let batch = 0; batch < 5; batch++) {
      p.onNewBatch(6)
      p.partition(null, 6)
      assert.is(p.partition(key, 6), expected, nullKey)
      p.partition(null, 6)
    }
  }
})

test('an empty key is hashed, not treated as a null key', () => {
  const p = new DefaultPartitioner()
  p.onNewBatch(17)
  p.onNewBatch(17)
  // Sticky null keys are now on partition 1; the empty key goes to Kafka's 0x106e08d9 % 17.
  assert.is(p.partition(null, 17), 1)
  assert.is(p.partition(new Uint8Array(0), 17), 0x106e08d9 % 17)
})

test('sticky sends every null-key record of one append call to one partition', () => {
  const p = new DefaultPartitioner({ nullKey: 'sticky' })
  p.onNewBatch(4)
  const seen = new Set<number>()
  for (let i = 0; i < 100; i++) seen.add(p.partition(null, 4))
  assert.equal([...seen], [0])
})

test('sticky advances round-robin at each new batch, starting at 0', () => {
  const p = new DefaultPartitioner()
  const perBatch: number[] = []
  for (let batch = 0; batch < 7; batch++) {
    p.onNewBatch(3)
    perBatch.push(p.partition(null, 3))
    assert.is(p.partition(null, 3), perBatch[batch])
  }
  assert.equal(perBatch, [0, 1, 2, 0, 1, 2, 0])
})

test('sticky is the default null-key strategy', () => {
  const implicit = new DefaultPartitioner()
  const explicit = new DefaultPartitioner({})
  implicit.onNewBatch(5)
  explicit.onNewBatch(5)
  assert.equal([implicit.partition(null, 5), implicit.partition(null, 5)], [0, 0])
  assert.equal([explicit.partition(null, 5), explicit.partition(null, 5)], [0, 0])
})

test('sticky picks partition 0 when records come before any batch', () => {
  const p = new DefaultPartitioner()
  assert.equal([p.partition(null, 3), p.partition(null, 3)], [0, 0])
  p.onNewBatch(3)
  assert.is(p.partition(null, 3), 1)
})

test('sticky stays in range when the partition count drops between calls', () => {
  const p = new DefaultPartitioner()
  p.onNewBatch(8)
  p.onNewBatch(8)
  p.onNewBatch(8)
  assert.is(p.partition(null, 8), 2)
  const partition = p.partition(null, 2)
  assert.ok(partition >= 0 && partition < 2, `got ${partition}`)
  assert.is(p.partition(null, 2), partition)
})

test('round-robin sends each null-key record to the next partition, starting at 0', () => {
  const p = new DefaultPartitioner({ nullKey: 'round-robin' })
  const placed: number[] = []
  for (let i = 0; i < 7; i++) placed.push(p.partition(null, 3))
  assert.equal(placed, [0, 1, 2, 0, 1, 2, 0])
})

test('round-robin carries on across append calls and spreads evenly', () => {
  const p = new DefaultPartitioner({ nullKey: 'round-robin' })
  const counts = [0, 0, 0]
  for (let batch = 0; batch < 10; batch++) {
    p.onNewBatch(3)
    // Batches of 4: a rotation that restarted per call would favour partition 0.
    for (let i = 0; i < 4; i++) counts[p.partition(null, 3)]++
  }
  assert.equal(counts, [14, 13, 13])
})

test('round-robin keyed records do not advance the rotation', () => {
  const p = new DefaultPartitioner({ nullKey: 'round-robin' })
  assert.is(p.partition(null, 3), 0)
  p.partition(utf8('a'), 3)
  p.partition(utf8('b'), 3)
  assert.is(p.partition(null, 3), 1)
})

test('partition count 1 puts every record on partition 0', () => {
  for (const nullKey of ['sticky', 'round-robin'] as NullKeyStrategy[]) {
    const p = new DefaultPartitioner({ nullKey })
    for (let batch = 0; batch < 3; batch++) {
      p.onNewBatch(1)
      for (let i = 0; i < 5; i++) {
        assert.is(p.partition(null, 1), 0, nullKey)
        assert.is(p.partition(utf8(`key-${i}`), 1), 0, nullKey)
      }
    }
  }
})

test('rejects an unknown null-key strategy', () => {
  expectInvalid(() => new DefaultPartitioner({ nullKey: 'random' as NullKeyStrategy }), 'nullKey')
  expectInvalid(() => new DefaultPartitioner({ nullKey: null as unknown as NullKeyStrategy }), 'nullKey')
})

test('rejects options that are not an object', () => {
  expectInvalid(() => new DefaultPartitioner('sticky' as unknown as DefaultPartitionerOptions), 'options')
  expectInvalid(() => new DefaultPartitioner(null as unknown as DefaultPartitionerOptions), 'options')
})

test('rejects a partition count that is not an integer >= 1', () => {
  const p = new DefaultPartitioner()
  for (const n of [0, -1, 1.5, NaN, Infinity]) {
    expectInvalid(() => p.partition(utf8('k'), n), 'partitionCount')
    expectInvalid(() => p.partition(null, n), 'partitionCount')
    expectInvalid(() => p.onNewBatch(n), 'partitionCount')
  }
})

test.run()
