/**
 * ProducerState on its own: which batches it answers as duplicates, which it refuses and
 * why, the wrap of sequences at 2^31, and the snapshot payload (round trip, expiry of silent
 * producers, the size cap, malformed payloads). The partition-level behaviour, across
 * reopens and crashes, is test/idempotence.test.ts.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { BATCHES_PER_PRODUCER, EXPIRATION_MS, ProducerState, addSequence } from '../lib/producer-state.js'
import { StrandError } from '../lib/errors.js'
import { decodeFrame, encodeFrame } from '../lib/io/files.js'

const WHERE = 't/0'
const NOW = 1_700_000_000_000
const SEQ_SPAN = 2 ** 31

function expectThrow(fn: () => unknown, code: string, why: string): StrandError {
  try {
    fn()
  } catch (err) {
    assert.instance(err, StrandError, `${why}: expected a StrandError, got ${(err as Error)?.message}`)
    assert.is((err as StrandError).code, code, `${why}: ${(err as Error).message}`)
    return err as StrandError
  }
  assert.unreachable(`${why}: expected ${code}, nothing was thrown`)
  throw new Error('unreachable')
}

interface Written { firstSeq: number, count: number, baseOffset: number }

/** Writes `counts.length` batches for `id` from `firstSeq`, at consecutive offsets from `offset`; returns them. */
function writeBatches(s: ProducerState, id: number, epoch: number, firstSeq: number, counts: number[], offset: number, ts = NOW): Written[] {
  const out: Written[] = []
  let seq = firstSeq
  for (const count of counts) {
    assert.is(s.check(WHERE, id, epoch, seq, count), null, `batch at sequence ${seq} is new and in order`)
    s.update(id, epoch, seq, count, offset, ts)
    out.push({ firstSeq: seq, count, baseOffset: offset })
    seq = addSequence(seq, count)
    offset += count
  }
  return out
}

function assertDuplicate(s: ProducerState, id: number, epoch: number, b: Written, why: string): void {
  const dup = s.check(WHERE, id, epoch, b.firstSeq, b.count)
  assert.ok(dup !== null, `${why}: retry of sequence ${b.firstSeq} (${b.count} records) is a duplicate`)
  assert.equal(dup, { firstSeq: b.firstSeq, lastSeq: addSequence(b.firstSeq, b.count - 1), baseOffset: b.baseOffset, lastOffset: b.baseOffset + b.count - 1 }, why)
}

// --- check and update -------------------------------------------------------------------

test('a producer the partition does not know is accepted at any sequence', () => {
  const s = new ProducerState()
  for (const seq of [0, 1, 12345, SEQ_SPAN - 1]) assert.is(s.check(WHERE, 7, 0, seq, 3), null, `sequence ${seq}`)
  assert.is(s.size, 0, 'check changes nothing')
})

test(`a retry of any of the last ${BATCHES_PER_PRODUCER} batches is a duplicate answered with its offsets; an older one is out of order`, () => {
  const s = new ProducerState()
  const batches = writeBatches(s, 7, 0, 0, [3, 1, 4, 1, 5, 9, 2], 100)
  const kept = batches.slice(-BATCHES_PER_PRODUCER)
  for (const b of kept) assertDuplicate(s, 7, 0, b, 'kept batch')
  // Checking in any order, repeatedly, changes nothing.
  for (const b of [...kept].reverse()) assertDuplicate(s, 7, 0, b, 'kept batch, checked again')
  for (const b of batches.slice(0, -BATCHES_PER_PRODUCER)) {
    expectThrow(() => s.check(WHERE, 7, 0, b.firstSeq, b.count), 'OUT_OF_ORDER_SEQUENCE', `batch at ${b.firstSeq}, older than the last ${BATCHES_PER_PRODUCER}`)
  }
  const last = batches[batches.length - 1]
  const next = addSequence(last.firstSeq, last.count)
  assert.is(s.check(WHERE, 7, 0, next, 1), null, 'the next sequence is new and in order')
})

test('a gap, a step back, or a retry with another record count is out of order and names the expected sequence', () => {
  const s = new ProducerState()
  const [, b] = writeBatches(s, 7, 0, 10, [2, 3], 0)
  const next = b.firstSeq + b.count // 15
  const err = expectThrow(() => s.check(WHERE, 7, 0, next + 1, 1), 'OUT_OF_ORDER_SEQUENCE', 'a gap of one')
  assert.match(err.message, WHERE)
  assert.match(err.message, String(next))
  expectThrow(() => s.check(WHERE, 7, 0, next - 1, 1), 'OUT_OF_ORDER_SEQUENCE', 'a step back inside the last batch')
  expectThrow(() => s.check(WHERE, 7, 0, b.firstSeq, b.count + 1), 'OUT_OF_ORDER_SEQUENCE', 'same first sequence, one more record')
  expectThrow(() => s.check(WHERE, 7, 0, b.firstSeq, b.count - 1), 'OUT_OF_ORDER_SEQUENCE', 'same first sequence, one record fewer')
  expectThrow(() => s.check(WHERE, 7, 0, 0, 1), 'OUT_OF_ORDER_SEQUENCE', 'restarting at 0 in the same epoch')
})

test('producers are independent of each other', () => {
  const s = new ProducerState()
  const a = writeBatches(s, 1, 0, 0, [1, 1], 0)
  const b = writeBatches(s, 2, 3, 500, [2, 2], 2)
  writeBatches(s, 1, 0, 2, [1], 6)
  assert.is(s.size, 2)
  assertDuplicate(s, 1, 0, a[1], 'producer 1')
  assertDuplicate(s, 2, 3, b[1], 'producer 2')
  assert.is(s.check(WHERE, 2, 3, 504, 1), null, 'producer 2 goes on where it left off, whatever producer 1 did')
})

test('an older epoch is fenced, even for a batch the partition holds', () => {
  const s = new ProducerState()
  const [b] = writeBatches(s, 7, 5, 0, [2], 0)
  const err = expectThrow(() => s.check(WHERE, 7, 4, b.firstSeq, b.count), 'PRODUCER_FENCED', 'retry at an older epoch')
  assert.match(err.message, 'epoch 4')
  expectThrow(() => s.check(WHERE, 7, 0, 2, 1), 'PRODUCER_FENCED', 'next sequence at an older epoch')
})

test('a newer epoch must start at sequence 0, and then replaces the old one', () => {
  const s = new ProducerState()
  const old = writeBatches(s, 7, 0, 0, [2, 2], 0)
  expectThrow(() => s.check(WHERE, 7, 1, 4, 1), 'OUT_OF_ORDER_SEQUENCE', 'newer epoch continuing the old sequence')
  expectThrow(() => s.check(WHERE, 7, 1, 1, 1), 'OUT_OF_ORDER_SEQUENCE', 'newer epoch at 1')
  assert.is(s.check(WHERE, 7, 1, 0, 3), null, 'newer epoch at 0')
  // The old epoch is still current until the new one writes.
  assertDuplicate(s, 7, 0, old[1], 'old epoch before the new one wrote')
  const [fresh] = writeBatches(s, 7, 1, 0, [3], 4)
  expectThrow(() => s.check(WHERE, 7, 0, old[1].firstSeq, old[1].count), 'PRODUCER_FENCED', 'old epoch after the new one wrote')
  assertDuplicate(s, 7, 1, fresh, 'new epoch')
  assert.is(s.check(WHERE, 7, 1, 3, 1), null, 'new epoch goes on')
})

test('sequences wrap from 2^31-1 to 0, inside a batch and between batches', () => {
  assert.is(addSequence(SEQ_SPAN - 1, 1), 0)
  assert.is(addSequence(SEQ_SPAN - 3, 5), 2)
  assert.is(addSequence(5, 0), 5)
  const s = new ProducerState()
  // Ends exactly at 2^31-1, then one that crosses the wrap, then one after it.
  const batches = writeBatches(s, 7, 0, SEQ_SPAN - 4, [4, 3, 2], 0)
  assert.equal(batches.map((b) => b.firstSeq), [SEQ_SPAN - 4, 0, 3])
  for (const b of batches) assertDuplicate(s, 7, 0, b, `batch at ${b.firstSeq}`)
  const crossing = writeBatches(s, 8, 0, SEQ_SPAN - 2, [5], 9)[0]
  assertDuplicate(s, 8, 0, crossing, 'a batch crossing the wrap')
  assert.is(s.check(WHERE, 8, 0, 3, 1), null, 'after a crossing batch the next sequence is 3')
  expectThrow(() => s.check(WHERE, 8, 0, SEQ_SPAN - 1 + 2, 1), 'OUT_OF_ORDER_SEQUENCE', 'an unwrapped sequence is not the next one')
})

test('clear forgets every producer', () => {
  const s = new ProducerState()
  writeBatches(s, 7, 0, 0, [1], 0)
  s.clear()
  assert.is(s.size, 0)
  assert.is(s.check(WHERE, 7, 0, 99, 1), null, 'a forgotten producer is accepted at any sequence')
})

// --- snapshots --------------------------------------------------------------------------

test('a snapshot loads back as each producer\'s last batch, epoch and offset', () => {
  const s = new ProducerState()
  const a = writeBatches(s, 1, 0, 0, [2, 3, 1], 0)
  const b = writeBatches(s, 2 ** 40 + 3, 32767, SEQ_SPAN - 2, [1, 4], 6)
  const c = writeBatches(s, 0, 2, 77, [1], 11)
  const payload = s.snapshot(12, NOW)
  assert.is(payload.length, 12 + 3 * 46, 'header plus 46 bytes per producer')

  const loaded = new ProducerState()
  writeBatches(loaded, 99, 0, 0, [1], 0) // replaced by the load
  assert.is(loaded.load(payload, 'producer-state'), 12, 'the offset the state is as of')
  assert.is(loaded.size, 3)
  assert.is(loaded.check(WHERE, 99, 0, 5, 1), null, 'producers not in the snapshot are gone')
  assertDuplicate(loaded, 1, 0, a[2], 'producer 1, last batch')
  assertDuplicate(loaded, 2 ** 40 + 3, 32767, b[1], 'producer 2, last batch (crossing the wrap)')
  assertDuplicate(loaded, 0, 2, c[0], 'producer 0, last batch')
  // Only the last batch survives a snapshot: an earlier one is refused, never written again.
  expectThrow(() => loaded.check(WHERE, 1, 0, a[1].firstSeq, a[1].count), 'OUT_OF_ORDER_SEQUENCE', 'producer 1, an earlier batch')
  expectThrow(() => loaded.check(WHERE, 2 ** 40 + 3, 32766, 0, 1), 'PRODUCER_FENCED', 'the epoch survives')
  assert.is(loaded.check(WHERE, 1, 0, 6, 2), null, 'producer 1 goes on after its last batch')
  assert.is(loaded.check(WHERE, 2 ** 40 + 3, 32767, 3, 2), null, 'producer 2 goes on after the wrap')

  // A second snapshot of the loaded state is the same bytes.
  assert.equal(loaded.snapshot(12, NOW), payload, 'snapshot → load → snapshot is stable')
  // And the state goes on taking batches after a load.
  loaded.update(1, 0, 6, 2, 12, NOW)
  assertDuplicate(loaded, 1, 0, a[2], 'the loaded batch stays among the last ones')
  assertDuplicate(loaded, 1, 0, { firstSeq: 6, count: 2, baseOffset: 12 }, 'a batch after the load')
})

test('an empty state snapshots to an empty payload that loads', () => {
  const payload = new ProducerState().snapshot(0, NOW)
  assert.is(payload.length, 12)
  const s = new ProducerState()
  assert.is(s.load(payload, 'f'), 0)
  assert.is(s.size, 0)
})

test('producers silent for more than 24 h are left out of the snapshot but not forgotten live', () => {
  const s = new ProducerState()
  writeBatches(s, 1, 0, 0, [1], 0, NOW - EXPIRATION_MS) // exactly 24 h: kept
  writeBatches(s, 2, 0, 0, [1], 1, NOW - EXPIRATION_MS - 1) // one ms more: dropped
  writeBatches(s, 3, 0, 0, [1], 2, NOW - EXPIRATION_MS - 1)
  s.update(3, 0, 1, 1, 3, NOW - 1000) // spoke again: kept
  s.update(3, 0, 2, 1, 4, NOW - EXPIRATION_MS - 5) // an older timestamp does not make it silent again
  const loaded = new ProducerState()
  loaded.load(s.snapshot(5, NOW), 'f')
  assert.is(loaded.size, 2, 'producers 1 and 3')
  assertDuplicate(loaded, 1, 0, { firstSeq: 0, count: 1, baseOffset: 0 }, 'producer 1')
  assertDuplicate(loaded, 3, 0, { firstSeq: 2, count: 1, baseOffset: 4 }, 'producer 3')
  assert.is(loaded.check(WHERE, 2, 0, 42, 1), null, 'producer 2 is unknown after the load')
  assert.is(s.size, 3, 'the live state still knows all three')
  assertDuplicate(s, 2, 0, { firstSeq: 0, count: 1, baseOffset: 1 }, 'producer 2, live')
})

test('a snapshot of very many producers keeps the most recent and fits a framed file', () => {
  const s = new ProducerState()
  const n = 25_000
  for (let id = 0; id < n; id++) s.update(id, 0, 0, 1, id, NOW - (n - id)) // higher id, more recent
  const payload = s.snapshot(n, NOW)
  // Through the real frame codec, which refuses payloads over its limit.
  const back = decodeFrame('STPS', encodeFrame('STPS', payload), 'producer-state')
  const loaded = new ProducerState()
  loaded.load(back, 'producer-state')
  assert.ok(loaded.size > 0 && loaded.size < n, `some but not all of ${n} producers kept (${loaded.size})`)
  assertDuplicate(loaded, n - 1, 0, { firstSeq: 0, count: 1, baseOffset: n - 1 }, 'the most recent producer')
  assert.is(loaded.check(WHERE, 0, 0, 42, 1), null, 'the least recent producer was left out')
  // Whatever was kept is a most-recent suffix.
  const oldestKept = n - loaded.size
  assertDuplicate(loaded, oldestKept, 0, { firstSeq: 0, count: 1, baseOffset: oldestKept }, 'the oldest kept')
  assert.is(loaded.check(WHERE, oldestKept - 1, 0, 42, 1), null, 'the newest left out')
})

test('a malformed payload is CORRUPT, names the file and leaves the state as it was', () => {
  const s = new ProducerState()
  writeBatches(s, 1, 0, 0, [1, 2], 0)
  writeBatches(s, 2, 0, 0, [1], 3)
  const good = s.snapshot(4, NOW)
  const negative = Buffer.from(good)
  negative.writeInt32BE(-1, 8)
  const overCount = Buffer.from(good)
  overCount.writeInt32BE(3, 8)
  const cases: Array<[string, Buffer]> = [
    ['empty', Buffer.alloc(0)],
    ['shorter than the header', good.subarray(0, 11)],
    ['one byte short', good.subarray(0, good.length - 1)],
    ['one byte extra', Buffer.concat([good, Buffer.alloc(1)])],
    ['a count larger than the entries', overCount],
    ['a negative count', negative],
  ]
  const target = new ProducerState()
  writeBatches(target, 9, 0, 0, [1], 0)
  for (const [name, payload] of cases) {
    const err = expectThrow(() => target.load(payload, '/data/t/0/producer-state'), 'CORRUPT', name)
    assert.match(err.message, '/data/t/0/producer-state', `${name}: names the file`)
    assert.is(target.size, 1, `${name}: state unchanged`)
    assertDuplicate(target, 9, 0, { firstSeq: 0, count: 1, baseOffset: 0 }, `${name}: state unchanged`)
  }
})

test.run()
