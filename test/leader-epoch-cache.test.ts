/**
 * LeaderEpochCache on its own (KIP-101's epoch → start offset map): what `assign` accepts and
 * replaces, where `endOffsetFor` says an epoch ends (latest, between, below all, above all),
 * truncation from either end, the `STLE` payload round trip and its refusal of damaged
 * payloads, and a randomized run against a plain model of the same rules. The partition-level
 * behaviour (checkpoint written before a batch of a new epoch, reload on open) is in
 * test/replication/partition-role.test.ts.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { type EpochEntry, LeaderEpochCache, UNDEFINED_EPOCH } from '../lib/leader-epoch-cache.js'
import { StrandError } from '../lib/errors.js'
import { writeInt64BE } from '../lib/codec/int64.js'
import { rng } from './helpers.js'

const FILE = '/data/t/0/leader-epoch-checkpoint'

function cacheOf(entries: Array<[number, number]>): LeaderEpochCache {
  const c = new LeaderEpochCache()
  for (const [epoch, start] of entries) assert.ok(c.assign(epoch, start), `assign(${epoch}, ${start}) builds the fixture`)
  return c
}

function pairs(c: LeaderEpochCache): Array<[number, number]> {
  return c.entries.map((e) => [e.epoch, e.startOffset])
}

/** An `STLE` payload with exactly these (epoch, start) pairs, valid or not. */
function payload(entries: Array<[number, number]>, count = entries.length, extra = 0): Buffer {
  const out = Buffer.alloc(4 + 12 * entries.length + extra)
  out.writeInt32BE(count, 0)
  entries.forEach(([epoch, start], i) => {
    out.writeInt32BE(epoch, 4 + 12 * i)
    writeInt64BE(out, 8 + 12 * i, start)
  })
  return out
}

function expectCorrupt(fn: () => unknown, why: string): StrandError {
  try {
    fn()
  } catch (err) {
    assert.instance(err, StrandError, `${why}: ${(err as Error)?.message}`)
    assert.is((err as StrandError).code, 'CORRUPT', `${why}: ${(err as Error).message}`)
    assert.ok((err as Error).message.includes(FILE), `${why}: the message names the file: ${(err as Error).message}`)
    return err as StrandError
  }
  assert.unreachable(`${why}: expected CORRUPT, nothing was thrown`)
  throw new Error('unreachable')
}

// --- assign ---------------------------------------------------------------------------------

test('an empty cache has no latest epoch and answers every epoch with -1/-1', () => {
  const c = new LeaderEpochCache()
  assert.ok(c.isEmpty)
  assert.is(c.latestEpoch, UNDEFINED_EPOCH)
  for (const epoch of [-1, 0, 5]) assert.equal(c.endOffsetFor(epoch, 100), { epoch: -1, endOffset: -1 })
})

test('assign appends epochs that grow and reports each change', () => {
  const c = new LeaderEpochCache()
  assert.ok(c.assign(0, 0))
  assert.ok(c.assign(2, 10))
  assert.ok(c.assign(7, 25))
  assert.equal(pairs(c), [[0, 0], [2, 10], [7, 25]])
  assert.is(c.latestEpoch, 7)
  assert.not.ok(c.isEmpty)
})

test('assign ignores the latest epoch again and any older epoch, even at a later offset', () => {
  const c = cacheOf([[1, 0], [3, 10]])
  assert.not.ok(c.assign(3, 10), 'the same entry again')
  assert.not.ok(c.assign(3, 20), 'the latest epoch at a later offset: its batches follow the entry')
  assert.not.ok(c.assign(3, 5), 'the latest epoch at an earlier offset')
  assert.not.ok(c.assign(2, 30), 'an epoch between two known ones')
  assert.not.ok(c.assign(0, 40), 'an epoch below all')
  assert.not.ok(c.assign(-1, 50), 'no epoch (a batch written without replication)')
  assert.equal(pairs(c), [[1, 0], [3, 10]])
})

test('a newer epoch that starts no later than the last entry replaces it (and any entry it covers)', () => {
  const same = cacheOf([[1, 0], [3, 10]])
  assert.ok(same.assign(4, 10), 'epoch 3 wrote nothing before epoch 4 began')
  assert.equal(pairs(same), [[1, 0], [4, 10]])

  const earlier = cacheOf([[1, 0], [3, 10], [4, 12]])
  assert.ok(earlier.assign(6, 5))
  assert.equal(pairs(earlier), [[1, 0], [6, 5]], 'every entry starting at or after 5 goes')

  const all = cacheOf([[1, 3], [2, 8]])
  assert.ok(all.assign(9, 0))
  assert.equal(pairs(all), [[9, 0]])
})

// --- endOffsetFor ---------------------------------------------------------------------------

test('endOffsetFor: the latest epoch ends at the log end offset', () => {
  const c = cacheOf([[0, 0], [2, 10], [5, 20]])
  assert.equal(c.endOffsetFor(5, 33), { epoch: 5, endOffset: 33 })
  assert.equal(c.endOffsetFor(5, 20), { epoch: 5, endOffset: 20 }, 'an epoch that has written nothing yet')
})

test('endOffsetFor: an epoch in the cache ends where the next one starts', () => {
  const c = cacheOf([[0, 0], [2, 10], [5, 20]])
  assert.equal(c.endOffsetFor(0, 33), { epoch: 0, endOffset: 10 })
  assert.equal(c.endOffsetFor(2, 33), { epoch: 2, endOffset: 20 })
})

test('endOffsetFor: an epoch between two known ones answers for the largest one below it', () => {
  const c = cacheOf([[0, 0], [2, 10], [5, 20]])
  assert.equal(c.endOffsetFor(1, 33), { epoch: 0, endOffset: 10 })
  assert.equal(c.endOffsetFor(3, 33), { epoch: 2, endOffset: 20 })
  assert.equal(c.endOffsetFor(4, 33), { epoch: 2, endOffset: 20 })
})

test('endOffsetFor: an epoch below all ends at the first start offset; one above all is unknown', () => {
  const c = cacheOf([[3, 7], [5, 20]])
  assert.equal(c.endOffsetFor(0, 33), { epoch: 0, endOffset: 7 })
  assert.equal(c.endOffsetFor(2, 33), { epoch: 2, endOffset: 7 })
  assert.equal(c.endOffsetFor(6, 33), { epoch: -1, endOffset: -1 })
  assert.equal(c.endOffsetFor(1000, 33), { epoch: -1, endOffset: -1 })
  assert.equal(c.endOffsetFor(-1, 33), { epoch: -1, endOffset: -1 }, 'no epoch asked for')
})

// --- truncation -----------------------------------------------------------------------------

test('truncateFromEnd drops the entries starting at or past the cut, and only those', () => {
  const c = cacheOf([[0, 0], [2, 10], [5, 20]])
  assert.not.ok(c.truncateFromEnd(21), 'a cut inside the last epoch keeps it')
  assert.equal(pairs(c), [[0, 0], [2, 10], [5, 20]])
  assert.ok(c.truncateFromEnd(20), 'a cut at an epoch start removes it')
  assert.equal(pairs(c), [[0, 0], [2, 10]])
  assert.ok(c.truncateFromEnd(3))
  assert.equal(pairs(c), [[0, 0]])
  assert.ok(c.truncateFromEnd(0))
  assert.ok(c.isEmpty)
  assert.not.ok(c.truncateFromEnd(0), 'nothing left to drop')
})

test('truncateFromStart drops epochs wholly before the new start and moves the one it falls in', () => {
  const inside = cacheOf([[0, 0], [2, 10], [5, 20]])
  assert.ok(inside.truncateFromStart(15))
  assert.equal(pairs(inside), [[2, 15], [5, 20]])

  const atStart = cacheOf([[0, 0], [2, 10], [5, 20]])
  assert.ok(atStart.truncateFromStart(20), 'the new start is an epoch start')
  assert.equal(pairs(atStart), [[5, 20]])

  const past = cacheOf([[0, 0], [2, 10], [5, 20]])
  assert.ok(past.truncateFromStart(40), 'past every start: the latest epoch stays, moved')
  assert.equal(pairs(past), [[5, 40]])

  const first = cacheOf([[0, 0], [2, 10]])
  assert.ok(first.truncateFromStart(4), 'inside the first epoch')
  assert.equal(pairs(first), [[0, 4], [2, 10]])
})

test('truncateFromStart at or before the first start changes nothing', () => {
  const c = cacheOf([[3, 10], [4, 12]])
  assert.not.ok(c.truncateFromStart(10))
  assert.not.ok(c.truncateFromStart(0))
  assert.equal(pairs(c), [[3, 10], [4, 12]])
  assert.not.ok(new LeaderEpochCache().truncateFromStart(5))
})

test('clear empties the cache', () => {
  const c = cacheOf([[0, 0], [1, 5]])
  c.clear()
  assert.ok(c.isEmpty)
  assert.is(c.latestEpoch, -1)
})

// --- payload --------------------------------------------------------------------------------

test('encode and load round-trip the entries, large offsets and epochs included', () => {
  const c = cacheOf([[0, 0], [7, 4_294_967_296], [0x7fffffff, Number.MAX_SAFE_INTEGER - 1]])
  const bytes = c.encode()
  assert.is(bytes.length, 4 + 12 * 3)
  assert.equal([...bytes.subarray(0, 4)], [0, 0, 0, 3], 'count, int32 big-endian')
  const back = new LeaderEpochCache()
  back.load(bytes, FILE)
  assert.equal(back.entries, c.entries)

  const empty = new LeaderEpochCache()
  assert.equal([...empty.encode()], [0, 0, 0, 0])
  const again = cacheOf([[1, 1]])
  again.load(empty.encode(), FILE)
  assert.ok(again.isEmpty, 'an empty payload loads as an empty cache')
})

test('load refuses malformed payloads with CORRUPT and keeps the entries it had', () => {
  const cases: Array<[string, Buffer]> = [
    ['no count', Buffer.alloc(3)],
    ['a negative count', payload([], -1)],
    ['a count larger than the entries', payload([[0, 0]], 2)],
    ['a count smaller than the entries', payload([[0, 0], [1, 5]], 1)],
    ['trailing bytes', payload([[0, 0]], 1, 5)],
    ['a negative epoch', payload([[-1, 0]])],
    ['a negative start offset', payload([[0, -5]])],
    ['an epoch repeated', payload([[2, 0], [2, 5]])],
    ['epochs out of order', payload([[3, 0], [2, 5]])],
    ['start offsets repeated', payload([[1, 5], [2, 5]])],
    ['start offsets out of order', payload([[1, 5], [2, 4]])],
  ]
  for (const [why, bytes] of cases) {
    const c = cacheOf([[4, 40]])
    expectCorrupt(() => c.load(bytes, FILE), why)
    assert.equal(pairs(c), [[4, 40]], `${why}: the cache is unchanged`)
  }
})

// --- against a model ------------------------------------------------------------------------

/**
 * The same rules stated directly on a list, without the cache's shortcuts: what an epoch's
 * end is by definition (the smallest start of a larger epoch), what each truncation keeps.
 */
class Model {
  entries: EpochEntry[] = []

  assign(epoch: number, start: number): boolean {
    if (epoch < 0) return false
    if (this.entries.some((e) => e.epoch >= epoch)) return false
    this.entries = this.entries.filter((e) => e.startOffset < start).concat({ epoch, startOffset: start })
    return true
  }

  endOffsetFor(epoch: number, leo: number): { epoch: number, endOffset: number } {
    if (epoch < 0 || this.entries.length === 0) return { epoch: -1, endOffset: -1 }
    const latest = Math.max(...this.entries.map((e) => e.epoch))
    if (epoch === latest) return { epoch, endOffset: leo }
    if (epoch > latest) return { epoch: -1, endOffset: -1 }
    const floor = this.entries.filter((e) => e.epoch <= epoch).map((e) => e.epoch)
    const end = Math.min(...this.entries.filter((e) => e.epoch > epoch).map((e) => e.startOffset))
    return { epoch: floor.length === 0 ? epoch : Math.max(...floor), endOffset: end }
  }

  truncateFromEnd(offset: number): boolean {
    const kept = this.entries.filter((e) => e.startOffset < offset)
    const changed = kept.length !== this.entries.length
    this.entries = kept
    return changed
  }

  truncateFromStart(offset: number): boolean {
    const before = this.entries.filter((e) => e.startOffset <= offset)
    if (this.entries.length === 0 || this.entries[0].startOffset >= offset) return false
    const holder = before[before.length - 1]
    this.entries = [{ epoch: holder.epoch, startOffset: offset }, ...this.entries.filter((e) => e.startOffset > offset)]
    return true
  }
}

test('random operations agree with a plain model, keep the invariants, and survive encode/load', () => {
  for (let seed = 1; seed <= 40; seed++) {
    const random = rng(seed)
    const c = new LeaderEpochCache()
    const m = new Model()
    let nextEpoch = 0
    let leo = 0
    for (let step = 0; step < 300; step++) {
      const what = random()
      const where = `seed ${seed} step ${step}`
      if (what < 0.45) {
        // Mostly new epochs at or near the end, sometimes stale ones or earlier starts.
        const epoch = random() < 0.8 ? nextEpoch + Math.floor(random() * 3) : Math.floor(random() * (nextEpoch + 1))
        const start = random() < 0.8 ? leo : Math.floor(random() * (leo + 1))
        nextEpoch = Math.max(nextEpoch, epoch + 1)
        assert.is(c.assign(epoch, start), m.assign(epoch, start), `${where}: assign(${epoch}, ${start})`)
        leo = start + Math.floor(random() * 20)
      } else if (what < 0.7) {
        const epoch = Math.floor(random() * (nextEpoch + 3)) - 1
        const end = Math.max(leo, ...c.entries.map((e) => e.startOffset))
        assert.equal(c.endOffsetFor(epoch, end), m.endOffsetFor(epoch, end), `${where}: endOffsetFor(${epoch}, ${end})`)
      } else if (what < 0.82) {
        const offset = Math.floor(random() * (leo + 5))
        assert.is(c.truncateFromEnd(offset), m.truncateFromEnd(offset), `${where}: truncateFromEnd(${offset})`)
        leo = Math.min(leo, offset)
      } else if (what < 0.94) {
        const offset = Math.floor(random() * (leo + 5))
        assert.is(c.truncateFromStart(offset), m.truncateFromStart(offset), `${where}: truncateFromStart(${offset})`)
        leo = Math.max(leo, offset)
      } else {
        const back = new LeaderEpochCache()
        back.load(c.encode(), FILE)
        assert.equal(back.entries, c.entries, `${where}: encode/load`)
      }
      assert.equal(c.entries, m.entries, `${where}: entries`)
      for (let i = 1; i < c.entries.length; i++) {
        assert.ok(c.entries[i].epoch > c.entries[i - 1].epoch && c.entries[i].startOffset > c.entries[i - 1].startOffset, `${where}: entries strictly increase`)
      }
      assert.is(c.latestEpoch, c.entries.length === 0 ? -1 : c.entries[c.entries.length - 1].epoch)
    }
  }
})

test.run()
