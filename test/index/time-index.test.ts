import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import path from 'node:path'
import { TIME_ENTRY_SIZE, TimeIndex } from '../../lib/index/time-index.js'
import { rng, withTempDir } from '../helpers.js'

const MAX_BYTES = 64 * 1020 // a whole number of 12-byte entries
/** Entries in the warm section MappedIndex.search tries first (8 KiB of 12-byte entries). */
const WARM_ENTRIES = Math.floor(8192 / TIME_ENTRY_SIZE)
const NOW = 1_700_000_000_000

type Entry = [timestamp: number, relativeOffset: number]

/** Strictly increasing timestamps and increasing relative offsets, starting above 2^32. */
function randomEntries(rand: () => number, n: number, start = NOW): Entry[] {
  const out: Entry[] = []
  let ts = start + Math.floor(rand() * 1000)
  let rel = Math.floor(rand() * 3)
  for (let i = 0; i < n; i++) {
    out.push([ts, rel])
    ts += 1 + Math.floor(rand() * 2 ** 20)
    rel += 1 + Math.floor(rand() * 50)
  }
  return out
}

/** The answer lookupBefore must give: offset of the last entry with timestamp < t, else −1. */
function oracle(entries: Entry[], t: number): number {
  let best = -1
  for (const [ts, rel] of entries) {
    if (ts >= t) break
    best = rel
  }
  return best
}

function build(file: string, entries: Entry[], maxBytes = MAX_BYTES): TimeIndex {
  const index = new TimeIndex(file, maxBytes, false)
  for (const [ts, rel] of entries) index.maybeAppend(ts, rel)
  return index
}

function entriesOf(index: TimeIndex): Entry[] {
  const out: Entry[] = []
  for (let i = 0; i < index.entries; i++) out.push([index.timestampAt(i), index.relativeOffsetAt(i)])
  return out
}

const SAMPLE: Entry[] = [[NOW, 0], [NOW + 10, 5], [NOW + 20, 9], [NOW + 30, 14]]

test('maybeAppend appends only timestamps strictly larger than the last entry\'s', async () => {
  await withTempDir((dir) => {
    const index = new TimeIndex(path.join(dir, 'a.timeindex'), MAX_BYTES, false)
    assert.is(index.lastTimestamp, -1)
    assert.is(index.lastRelativeOffset, -1)
    index.maybeAppend(100, 0)
    index.maybeAppend(100, 3) // equal: ignored
    index.maybeAppend(50, 4) // smaller: ignored
    index.maybeAppend(101, 5)
    index.maybeAppend(0, 6)
    assert.equal(entriesOf(index), [[100, 0], [101, 5]])
    assert.is(index.lastTimestamp, 101)
    assert.is(index.lastRelativeOffset, 5)
    index.close()
  })
})

test('maybeAppend with a larger timestamp for the same relative offset replaces the last entry (the seal-time entry)', async () => {
  await withTempDir((dir) => {
    const index = build(path.join(dir, 'r.timeindex'), [[100, 0], [200, 7]])
    index.maybeAppend(300, 7)
    assert.equal(entriesOf(index), [[100, 0], [300, 7]])
    assert.is(index.lookupBefore(301), 7)
    assert.is(index.lookupBefore(300), 0)
    index.close()
  })
})

test('maybeAppend throws when a larger timestamp comes with a smaller relative offset', async () => {
  await withTempDir((dir) => {
    const index = build(path.join(dir, 'b.timeindex'), [[100, 10]])
    assert.throws(() => index.maybeAppend(200, 9), /goes back/)
    assert.equal(entriesOf(index), [[100, 10]])
    index.close()
  })
})

test('lookupBefore returns the relative offset of the last entry with timestamp < t, against an oracle', async () => {
  await withTempDir((dir) => {
    for (const n of [1, 2, 5, WARM_ENTRIES - 1, WARM_ENTRIES, WARM_ENTRIES + 1, 2500]) {
      const seed = 0x7173 + n
      const rand = rng(seed)
      const entries = randomEntries(rand, n)
      const index = build(path.join(dir, `${n}.timeindex`), entries)
      assert.is(index.entries, n, `seed ${seed}`)
      const last = entries[n - 1][0]
      const targets = [0, 1, NOW - 1, last + 1, last + 2 ** 33]
      for (const [ts] of entries) targets.push(ts - 1, ts, ts + 1)
      for (let i = 0; i < 2000; i++) targets.push(entries[0][0] - 10 + Math.floor(rand() * (last - entries[0][0] + 20)))
      for (const t of targets) {
        assert.is(index.lookupBefore(t), oracle(entries, t), `seed ${seed}, ${n} entries, t ${t}`)
      }
      index.close()
    }
  })
})

test('an empty time index looks up -1 for any timestamp', async () => {
  await withTempDir((dir) => {
    const index = new TimeIndex(path.join(dir, 'e.timeindex'), MAX_BYTES, false)
    for (const t of [0, 1, NOW, 2 ** 53 - 1]) assert.is(index.lookupBefore(t), -1)
    assert.is(index.check(0), null)
    index.close()
  })
})

test('timestamps around and above 2^32 round trip through the int64 split, stored little-endian', async () => {
  await withTempDir((dir) => {
    const file = path.join(dir, 'big.timeindex')
    const stamps = [0, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 33 + 7, NOW, 2 ** 52 + 3, Number.MAX_SAFE_INTEGER]
    const entries: Entry[] = stamps.map((ts, i) => [ts, i * 2])
    const index = build(file, entries)
    assert.equal(entriesOf(index), entries)
    for (const [ts, rel] of entries) {
      assert.is(index.lookupBefore(ts + 1), rel, `just after ${ts}`)
      assert.is(index.lookupBefore(ts), oracle(entries, ts), `at ${ts}`)
    }
    index.seal()
    const raw = fs.readFileSync(file)
    assert.is(raw.length, entries.length * TIME_ENTRY_SIZE)
    entries.forEach(([ts, rel], i) => {
      assert.is(raw.readBigInt64LE(i * 12), BigInt(ts), `timestamp int64 LE at entry ${i}`)
      assert.is(raw.readInt32LE(i * 12 + 8), rel, `relativeOffset int32 LE at entry ${i}`)
    })
    index.close()
  })
})

test('truncateTo drops entries at or past the relative offset', async () => {
  await withTempDir((dir) => {
    const cases: Array<[number, number]> = [[100, 4], [15, 4], [14, 3], [10, 3], [9, 2], [6, 2], [5, 1], [1, 1], [0, 0]]
    for (const [to, left] of cases) {
      const index = build(path.join(dir, `t${to}.timeindex`), SAMPLE)
      index.truncateTo(to)
      assert.equal(entriesOf(index), SAMPLE.slice(0, left), `truncateTo(${to})`)
      assert.is(index.lastTimestamp, left === 0 ? -1 : SAMPLE[left - 1][0])
      index.close()
    }
    const index = build(path.join(dir, 'again.timeindex'), SAMPLE)
    index.truncateTo(9)
    index.maybeAppend(NOW + 15, 9)
    assert.equal(entriesOf(index), [[NOW, 0], [NOW + 10, 5], [NOW + 15, 9]], 'appends continue after truncation')
    index.close()
  })
})

test('a full time index reports isFull and maybeAppend of a new entry throws', async () => {
  await withTempDir((dir) => {
    const index = build(path.join(dir, 'f.timeindex'), SAMPLE, 4 * TIME_ENTRY_SIZE + 5)
    assert.is(index.maxEntries, 4)
    assert.ok(index.isFull)
    assert.throws(() => index.maybeAppend(NOW + 40, 20), /full/)
    // Replacing the last entry needs no new slot.
    index.maybeAppend(NOW + 50, 14)
    assert.is(index.lastTimestamp, NOW + 50)
    index.close()
  })
})

test('seal trims to entries * 12 bytes, lookups still work, and a reopen gives the same entries', async () => {
  await withTempDir((dir) => {
    const seed = 0x5ea17
    const rand = rng(seed)
    const entries = randomEntries(rand, 1000)
    const file = path.join(dir, 's.timeindex')
    const index = build(file, entries)
    assert.is(fs.statSync(file).size, MAX_BYTES)
    index.seal()
    assert.is(fs.statSync(file).size, entries.length * 12)
    assert.throws(() => index.maybeAppend(2 ** 52, 2 ** 30), /sealed/)
    const probes = entries.map(([ts]) => ts).concat([0, 2 ** 53 - 1])
    for (const t of probes) assert.is(index.lookupBefore(t), oracle(entries, t), `seed ${seed}, t ${t}`)
    index.close()

    const sealed = new TimeIndex(file, MAX_BYTES, true)
    assert.equal(entriesOf(sealed), entries, `seed ${seed}`)
    for (const t of probes) assert.is(sealed.lookupBefore(t), oracle(entries, t), `seed ${seed}, t ${t}`)
    sealed.unseal()
    assert.is(fs.statSync(file).size, MAX_BYTES)
    const [lastTs, lastRel] = entries[entries.length - 1]
    sealed.maybeAppend(lastTs + 1, lastRel + 1)
    assert.is(sealed.entries, entries.length + 1)
    sealed.close()
  })
})

test('a time index file with a partial trailing entry opens with it dropped', async () => {
  await withTempDir((dir) => {
    const file = path.join(dir, 'p.timeindex')
    const index = build(file, SAMPLE.slice(0, 2))
    index.seal()
    index.close()
    fs.appendFileSync(file, Buffer.from([1, 2, 3, 4, 5, 6, 7]))
    const reopened = new TimeIndex(file, MAX_BYTES, true)
    assert.equal(entriesOf(reopened), SAMPLE.slice(0, 2))
    assert.is(fs.statSync(file).size, 24)
    reopened.close()
  })
})

/** Writes raw little-endian entries as a sealed file and opens it. */
function fromRaw(file: string, entries: Entry[]): TimeIndex {
  const b = Buffer.alloc(entries.length * 12)
  entries.forEach(([ts, rel], i) => { b.writeBigInt64LE(BigInt(ts), i * 12); b.writeInt32LE(rel, i * 12 + 8) })
  fs.writeFileSync(file, b)
  return new TimeIndex(file, MAX_BYTES, true)
}

test('check accepts increasing entries within the segment and rejects offsets past its last relative offset', async () => {
  await withTempDir((dir) => {
    const index = build(path.join(dir, 'c.timeindex'), SAMPLE)
    assert.is(index.check(14), null)
    assert.is(index.check(100), null)
    assert.type(index.check(13), 'string')
    index.close()
  })
})

test('check rejects non-increasing timestamps (but for the final entry) and relative offsets that go back, found on disk', async () => {
  await withTempDir((dir) => {
    const bad: Entry[][] = [
      [[NOW, 0], [NOW, 1], [NOW + 1, 2]],
      [[NOW, 1], [NOW, 1]],
      [[NOW, 0], [NOW - 1, 1]],
      [[NOW, 5], [NOW + 1, 4]],
      [[NOW, 0], [NOW + 1, -2]],
      [[2 ** 33, 0], [2 ** 32, 1]]
    ]
    bad.forEach((entries, i) => {
      const index = fromRaw(path.join(dir, `bad${i}.timeindex`), entries)
      assert.type(index.check(1000), 'string', JSON.stringify(entries))
      index.close()
    })
    const good = fromRaw(path.join(dir, 'good.timeindex'), [[2 ** 32 - 1, 0], [2 ** 32, 3], [2 ** 40, 9]])
    assert.is(good.check(9), null)
    good.close()
    // A seal's final entry repeats the largest timestamp at the segment's last batch.
    const sealed = fromRaw(path.join(dir, 'sealed.timeindex'), [[NOW, 0], [NOW + 5, 3], [NOW + 5, 7]])
    assert.is(sealed.check(7), null)
    sealed.close()
  })
})

test('check rejects a negative relative offset, as OffsetIndex.check does', async () => {
  await withTempDir((dir) => {
    // -1 is also what lookupBefore returns for "no entry", so such an entry would read as none.
    const index = fromRaw(path.join(dir, 'neg.timeindex'), [[NOW, -1]])
    assert.type(index.check(1000), 'string')
    index.close()
  })
})

test.run()
