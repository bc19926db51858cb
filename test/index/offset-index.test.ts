import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import path from 'node:path'
import { OFFSET_ENTRY_SIZE, OffsetIndex } from '../../lib/index/offset-index.js'
import { rng, withTempDir } from '../helpers.js'

const MAX_BYTES = 64 * 1024
/** Entries in the warm section MappedIndex.search tries first (8 KiB of 8-byte entries). */
const WARM_ENTRIES = 8192 / OFFSET_ENTRY_SIZE

type Entry = [relativeOffset: number, position: number]

/** Strictly increasing (relativeOffset, position) pairs; the first offset is > 0 so targets below it exist. */
function randomEntries(rand: () => number, n: number): Entry[] {
  const out: Entry[] = []
  let rel = 1 + Math.floor(rand() * 5)
  let pos = Math.floor(rand() * 100)
  for (let i = 0; i < n; i++) {
    out.push([rel, pos])
    rel += 1 + Math.floor(rand() * 20)
    pos += 1 + Math.floor(rand() * 5000)
  }
  return out
}

/** The answer lookup must give: position of the last entry with relative offset ≤ target, else 0. */
function oracle(entries: Entry[], target: number): number {
  let best = 0
  for (const [rel, pos] of entries) {
    if (rel > target) break
    best = pos
  }
  return best
}

function build(file: string, entries: Entry[], maxBytes = MAX_BYTES): OffsetIndex {
  const index = new OffsetIndex(file, maxBytes, false)
  for (const [rel, pos] of entries) index.append(rel, pos)
  return index
}

function entriesOf(index: OffsetIndex): Entry[] {
  const out: Entry[] = []
  for (let i = 0; i < index.entries; i++) out.push([index.relativeOffsetAt(i), index.positionAt(i)])
  return out
}

/** Targets below the first entry, on every entry, between entries and above the last, plus random ones. */
function targetsFor(rand: () => number, entries: Entry[]): number[] {
  const last = entries.length === 0 ? 0 : entries[entries.length - 1][0]
  const targets = [-1, 0, last + 1, last + 1000, 2 ** 31 - 1]
  for (const [rel] of entries) targets.push(rel, rel - 1, rel + 1)
  for (let i = 0; i < 2000; i++) targets.push(Math.floor(rand() * (last + 50)))
  return targets
}

const SAMPLE: Entry[] = [[0, 0], [10, 100], [20, 200], [30, 300]]

test('lookup returns the position of the largest entry <= target, against a sorted-array oracle', async () => {
  await withTempDir((dir) => {
    for (const n of [1, 2, 3, 17, WARM_ENTRIES - 1, WARM_ENTRIES, WARM_ENTRIES + 1, 3000]) {
      const seed = 0xc0ffee + n
      const rand = rng(seed)
      const entries = randomEntries(rand, n)
      const index = build(path.join(dir, `${n}.index`), entries)
      assert.is(index.entries, n)
      for (const t of targetsFor(rand, entries)) {
        assert.is(index.lookup(t), oracle(entries, t), `seed ${seed}, ${n} entries, target ${t}`)
      }
      index.close()
    }
  })
})

test('lookup searches both the warm section and the cold part of an index longer than 8 KiB', async () => {
  await withTempDir((dir) => {
    const seed = 0xba5e
    const rand = rng(seed)
    const n = 3 * WARM_ENTRIES
    const entries = randomEntries(rand, n)
    const index = build(path.join(dir, 'warm.index'), entries)
    const boundary = n - WARM_ENTRIES
    // Entries on each side of the warm boundary and at both ends.
    for (const i of [0, 1, boundary - 2, boundary - 1, boundary, boundary + 1, n - 2, n - 1]) {
      const [rel, pos] = entries[i]
      assert.is(index.lookup(rel), pos, `seed ${seed}, entry ${i} exactly`)
      assert.is(index.lookup(rel + 1), oracle(entries, rel + 1), `seed ${seed}, just past entry ${i}`)
      assert.is(index.lookup(rel - 1), oracle(entries, rel - 1), `seed ${seed}, just before entry ${i}`)
    }
    index.close()
  })
})

test('an empty index looks up 0 for any target and reports no last entry', async () => {
  await withTempDir((dir) => {
    const index = new OffsetIndex(path.join(dir, 'empty.index'), MAX_BYTES, false)
    assert.is(index.entries, 0)
    for (const t of [-1, 0, 1, 1e6]) assert.is(index.lookup(t), 0)
    assert.is(index.lastRelativeOffset, -1)
    assert.is(index.lastPosition, -1)
    assert.is(index.check(0), null)
    index.close()
  })
})

test('a target below the first entry looks up position 0', async () => {
  await withTempDir((dir) => {
    const index = build(path.join(dir, 'i.index'), [[5, 40], [9, 90]])
    assert.is(index.lookup(4), 0)
    assert.is(index.lookup(5), 40)
    index.close()
  })
})

test('entries are stored little-endian: relativeOffset int32 at 0, position int32 at 4', async () => {
  await withTempDir((dir) => {
    const file = path.join(dir, 'le.index')
    const index = build(file, [[3, 0x01020304], [0x7fffffff, 0x7ffffffe]])
    index.seal()
    const bytes = fs.readFileSync(file)
    assert.is(bytes.length, 16)
    assert.is(bytes.readInt32LE(0), 3)
    assert.is(bytes.readInt32LE(4), 0x01020304)
    assert.is(bytes.readInt32LE(8), 0x7fffffff)
    assert.is(bytes.readInt32LE(12), 0x7ffffffe)
    index.close()
  })
})

test('an active index preallocates its file to maxBytes rounded down to a whole entry', async () => {
  await withTempDir((dir) => {
    const file = path.join(dir, 'pre.index')
    const index = new OffsetIndex(file, 8 * 100 + 5, false)
    assert.is(index.maxEntries, 100)
    assert.is(fs.statSync(file).size, 800)
    index.close()
  })
})

test('append rejects entries that do not strictly increase in both fields', async () => {
  await withTempDir((dir) => {
    const index = build(path.join(dir, 'inc.index'), [[10, 100]])
    assert.throws(() => index.append(10, 200), /does not follow/, 'same offset')
    assert.throws(() => index.append(9, 200), /does not follow/, 'lower offset')
    assert.throws(() => index.append(11, 100), /does not follow/, 'same position')
    assert.throws(() => index.append(11, 50), /does not follow/, 'lower position')
    assert.is(index.entries, 1)
    index.append(11, 101)
    assert.is(index.entries, 2)
    index.close()
  })
})

test('a full index reports isFull and append throws', async () => {
  await withTempDir((dir) => {
    const index = build(path.join(dir, 'full.index'), SAMPLE, 4 * OFFSET_ENTRY_SIZE)
    assert.ok(index.isFull)
    assert.throws(() => index.append(40, 400), /full/)
    assert.is(index.entries, 4)
    assert.is(index.lookup(1000), 300)
    index.truncateTo(30)
    assert.not.ok(index.isFull, 'truncation makes room')
    index.append(35, 350)
    assert.is(index.lookup(1000), 350)
    index.close()
  })
})

test('truncateTo drops entries at or past the relative offset and appends continue from there', async () => {
  await withTempDir((dir) => {
    const cases: Array<[number, number]> = [[1000, 4], [31, 4], [30, 3], [25, 3], [21, 3], [20, 2], [11, 2], [10, 1], [1, 1], [0, 0], [-5, 0]]
    for (const [to, left] of cases) {
      const index = build(path.join(dir, `t${to}.index`), SAMPLE)
      index.truncateTo(to)
      assert.is(index.entries, left, `truncateTo(${to})`)
      assert.equal(entriesOf(index), SAMPLE.slice(0, left), `truncateTo(${to})`)
      for (const t of [0, 5, 10, 15, 20, 25, 30, 35]) {
        assert.is(index.lookup(t), oracle(SAMPLE.slice(0, left), t), `truncateTo(${to}), lookup(${t})`)
      }
      index.close()
    }
    const index = build(path.join(dir, 'again.index'), SAMPLE)
    index.truncateTo(20)
    index.append(15, 150)
    assert.equal(entriesOf(index), [[0, 0], [10, 100], [15, 150]])
    index.close()
  })
})

test('truncateTo on a large index matches the oracle in both the warm and the cold section', async () => {
  await withTempDir((dir) => {
    const seed = 0x7a11
    const rand = rng(seed)
    const entries = randomEntries(rand, 2 * WARM_ENTRIES + 10)
    for (let k = 0; k < 20; k++) {
      const index = build(path.join(dir, `${k}.index`), entries)
      const to = Math.floor(rand() * (entries[entries.length - 1][0] + 10))
      index.truncateTo(to)
      const expected = entries.filter(([rel]) => rel < to)
      assert.is(index.entries, expected.length, `seed ${seed}, truncateTo(${to})`)
      assert.is(index.lastRelativeOffset, expected.length === 0 ? -1 : expected[expected.length - 1][0], `seed ${seed}, truncateTo(${to})`)
      index.close()
    }
  })
})

test('truncateToPosition drops entries pointing at or past the position', async () => {
  await withTempDir((dir) => {
    const cases: Array<[number, number]> = [[1000, 4], [301, 4], [300, 3], [250, 3], [200, 2], [101, 2], [100, 1], [1, 1], [0, 0]]
    for (const [to, left] of cases) {
      const index = build(path.join(dir, `p${to}.index`), SAMPLE)
      index.truncateToPosition(to)
      assert.equal(entriesOf(index), SAMPLE.slice(0, left), `truncateToPosition(${to})`)
      index.close()
    }
  })
})

test('seal trims the file to entries * 8 bytes; lookups still work and appends are refused', async () => {
  await withTempDir((dir) => {
    const seed = 0x5ea1
    const rand = rng(seed)
    const entries = randomEntries(rand, 1500)
    const file = path.join(dir, 'seal.index')
    const index = build(file, entries)
    assert.is(fs.statSync(file).size, MAX_BYTES)
    index.seal()
    assert.is(fs.statSync(file).size, entries.length * 8)
    assert.is(index.sizeInBytes, entries.length * 8)
    assert.is(index.entries, entries.length)
    for (const t of targetsFor(rand, entries)) assert.is(index.lookup(t), oracle(entries, t), `seed ${seed}, target ${t}`)
    assert.throws(() => index.append(2 ** 30, 2 ** 30), /sealed/)
    index.seal() // idempotent
    assert.is(fs.statSync(file).size, entries.length * 8)
    index.close()
  })
})

test('seal after truncateTo trims to the remaining entries', async () => {
  await withTempDir((dir) => {
    const file = path.join(dir, 'ts.index')
    const index = build(file, SAMPLE)
    index.truncateTo(20)
    index.seal()
    assert.is(fs.statSync(file).size, 16)
    index.close()
    const reopened = new OffsetIndex(file, MAX_BYTES, true)
    assert.equal(entriesOf(reopened), SAMPLE.slice(0, 2))
    reopened.close()
  })
})

test('reopening a sealed file gives the same entries and lookups', async () => {
  await withTempDir((dir) => {
    const seed = 0x0be4
    const rand = rng(seed)
    const entries = randomEntries(rand, 2000)
    const file = path.join(dir, 're.index')
    const index = build(file, entries)
    index.seal()
    index.close()
    const sealed = new OffsetIndex(file, MAX_BYTES, true)
    assert.equal(entriesOf(sealed), entries, `seed ${seed}`)
    for (const t of targetsFor(rand, entries)) assert.is(sealed.lookup(t), oracle(entries, t), `seed ${seed}, target ${t}`)
    assert.is(sealed.check(entries[entries.length - 1][1] + 1), null)
    sealed.close()
    // Reopened as active: the same entries, the file grown back to maxBytes, appends allowed.
    const active = new OffsetIndex(file, MAX_BYTES, false)
    assert.equal(entriesOf(active), entries, `seed ${seed}`)
    assert.is(fs.statSync(file).size, MAX_BYTES)
    const [lastRel, lastPos] = entries[entries.length - 1]
    active.append(lastRel + 1, lastPos + 1)
    assert.is(active.entries, entries.length + 1)
    active.close()
  })
})

test('an empty sealed index is a zero-length file and reopens empty', async () => {
  await withTempDir((dir) => {
    const file = path.join(dir, 'e.index')
    const index = new OffsetIndex(file, MAX_BYTES, false)
    index.seal()
    assert.is(fs.statSync(file).size, 0)
    assert.is(index.lookup(5), 0)
    index.close()
    const reopened = new OffsetIndex(file, MAX_BYTES, true)
    assert.is(reopened.entries, 0)
    assert.is(reopened.lookup(5), 0)
    reopened.unseal()
    reopened.append(0, 0)
    assert.is(reopened.lookup(5), 0)
    assert.is(reopened.entries, 1)
    reopened.close()
  })
})

test('unseal grows the file back to its preallocated size, keeps the entries and allows appends', async () => {
  await withTempDir((dir) => {
    const file = path.join(dir, 'un.index')
    const index = build(file, SAMPLE)
    index.seal()
    index.unseal()
    assert.is(fs.statSync(file).size, MAX_BYTES)
    assert.equal(entriesOf(index), SAMPLE)
    index.unseal() // idempotent
    index.append(40, 400)
    assert.is(index.lookup(45), 400)
    index.seal()
    assert.is(fs.statSync(file).size, 40)
    index.close()
    const reopened = new OffsetIndex(file, MAX_BYTES, true)
    assert.equal(entriesOf(reopened), [...SAMPLE, [40, 400]])
    reopened.close()
  })
})

test('check accepts increasing entries inside the log and rejects positions at or beyond the log size', async () => {
  await withTempDir((dir) => {
    const index = build(path.join(dir, 'c.index'), SAMPLE)
    assert.is(index.check(301), null)
    assert.type(index.check(300), 'string', 'a position equal to the log size points past the last byte')
    assert.type(index.check(0), 'string')
    index.close()
  })
})

/** Writes raw little-endian entries as a sealed file and opens it, as a reopen after a crash would. */
function fromRaw(file: string, entries: Entry[]): OffsetIndex {
  const b = Buffer.alloc(entries.length * 8)
  entries.forEach(([rel, pos], i) => { b.writeInt32LE(rel, i * 8); b.writeInt32LE(pos, i * 8 + 4) })
  fs.writeFileSync(file, b)
  return new OffsetIndex(file, MAX_BYTES, true)
}

test('check rejects non-increasing offsets or positions found on disk', async () => {
  await withTempDir((dir) => {
    const bad: Entry[][] = [
      [[0, 0], [5, 100], [5, 200]],
      [[0, 0], [5, 100], [4, 200]],
      [[0, 0], [5, 100], [6, 100]],
      [[0, 0], [5, 100], [6, 50]],
      [[-1, 0]],
      [[0, -1]],
      [[0, 0], [0, 0]]
    ]
    bad.forEach((entries, i) => {
      const index = fromRaw(path.join(dir, `bad${i}.index`), entries)
      assert.type(index.check(10_000), 'string', JSON.stringify(entries))
      index.close()
    })
    const good = fromRaw(path.join(dir, 'good.index'), [[0, 0], [5, 100], [6, 101]])
    assert.is(good.check(10_000), null)
    good.close()
  })
})

test('a file whose length is not a multiple of 8 opens with the partial entry dropped', async () => {
  await withTempDir((dir) => {
    const file = path.join(dir, 'partial.index')
    const whole = Buffer.alloc(24)
    SAMPLE.slice(0, 3).forEach(([rel, pos], i) => { whole.writeInt32LE(rel, i * 8); whole.writeInt32LE(pos, i * 8 + 4) })
    const torn = Buffer.concat([whole, Buffer.from([30, 0, 0, 0, 0x2c])])

    fs.writeFileSync(file, torn)
    const sealed = new OffsetIndex(file, MAX_BYTES, true)
    assert.equal(entriesOf(sealed), SAMPLE.slice(0, 3))
    assert.is(fs.statSync(file).size, 24, 'sealed open trims the partial entry')
    assert.is(sealed.lookup(100), 200)
    sealed.close()

    fs.writeFileSync(file, torn)
    const active = new OffsetIndex(file, MAX_BYTES, false)
    assert.equal(entriesOf(active), SAMPLE.slice(0, 3))
    assert.is(fs.statSync(file).size, MAX_BYTES)
    active.append(30, 300)
    assert.equal(entriesOf(active), SAMPLE)
    active.close()
  })
})

test('opening an active index from a file longer than maxBytes keeps only maxEntries entries', async () => {
  await withTempDir((dir) => {
    const file = path.join(dir, 'long.index')
    const index = build(file, SAMPLE)
    index.seal()
    index.close()
    const smaller = new OffsetIndex(file, 2 * OFFSET_ENTRY_SIZE, false)
    assert.equal(entriesOf(smaller), SAMPLE.slice(0, 2))
    assert.ok(smaller.isFull)
    assert.is(fs.statSync(file).size, 16)
    smaller.close()
  })
})

test.run()
