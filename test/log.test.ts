/**
 * Log: the directory lock (in-process and across processes), topic lifecycle on disk, config
 * overrides across reopen, argument and state errors, leftover staging directories, and
 * topic-level placement and all-or-nothing appends.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Log, StrandError, TOPIC_DEFAULTS, murmur2, toPositive, type Topic } from '../lib/index.js'
import { readFrame } from '../lib/io/files.js'
import { type Child, bounded, killHard, spawnChild, waitForLine, withTempDir } from './helpers.js'

const OPEN_LOG = fileURLToPath(new URL('./fixtures/open-log.ts', import.meta.url))
/** Upper bound on any wait for a child, so a broken test fails instead of hanging. */
const WAIT_MS = 20_000
const OPEN = { retentionCheckIntervalMs: 0 } as const

async function expectReject(p: Promise<unknown> | (() => unknown), code: string, what: string): Promise<StrandError> {
  try {
    await (typeof p === 'function' ? p() : p)
  } catch (err) {
    assert.instance(err, StrandError, `${what}: ${(err as Error).message}`)
    assert.is((err as StrandError).code, code, `${what}: ${(err as Error).message}`)
    return err as StrandError
  }
  assert.unreachable(`${what}: expected ${code}`)
  throw new Error('unreachable')
}

/** Every file and directory under `dir`, relative, sorted; the lock file excluded. */
function tree(dir: string): string[] {
  const out: string[] = []
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(dir, rel))) {
      const r = rel === '' ? name : `${rel}/${name}`
      out.push(r)
      if (fs.statSync(path.join(dir, r)).isDirectory()) walk(r)
    }
  }
  walk('')
  return out.filter((f) => f !== '.lock').sort()
}

/** Values of every record in a partition, in offset order. */
function values(topic: Topic, partition: number): string[] {
  const p = topic.partition(partition)
  const out: string[] = []
  let o = p.logStartOffset
  while (o < p.logEndOffset) {
    const r = p.read(o)
    for (const rec of r.records()) out.push(rec.value!.toString())
    o = r.nextOffset
  }
  return out
}

// --- the directory lock --------------------------------------------------------------------

function spawnOpenLog(dir: string): Child {
  return spawnChild(OPEN_LOG, [dir])
}

function waitForOpen(child: Child): Promise<string> {
  return waitForLine(child, (l) => l === 'open', WAIT_MS, 'waiting for "open" from the child')
}

test('a second Log.open on the same directory in the same process rejects with LOCKED', () =>
  withTempDir(async (dir) => {
    const log = await Log.open(dir, OPEN)
    try {
      const p = (await log.createTopic('t')).partition(0)
      await p.append([{ value: 'first' }])
      const err = await expectReject(Log.open(dir, OPEN), 'LOCKED', 'second open')
      assert.match(err.message, path.join(dir, '.lock'))
      // Also through another spelling of the same directory.
      await expectReject(Log.open(path.join(dir, '.', 'topics', '..'), OPEN), 'LOCKED', 'second open via another path')
      // The failed open disturbed nothing: the first Log still writes and reads.
      assert.is((await p.append([{ value: 'second' }])).baseOffset, 1)
      assert.equal(values(log.topic('t'), 0), ['first', 'second'])
    } finally {
      await log.close()
    }
    const again = await Log.open(dir, OPEN)
    try {
      assert.ok(again.openedCleanly)
      assert.equal(values(again.topic('t'), 0), ['first', 'second'])
    } finally {
      await again.close()
    }
  }))

test('a child process holding the directory makes Log.open reject with LOCKED; after SIGKILL the parent opens it uncleanly', () =>
  withTempDir(async (dir) => {
    const log = await Log.open(dir, OPEN)
    await (await log.createTopic('t', { partitions: 2 })).append([{ value: 'a', partition: 0 }, { value: 'b', partition: 1 }])
    await log.close()
    assert.ok(fs.existsSync(path.join(dir, 'clean-shutdown')))

    const child = spawnOpenLog(dir)
    try {
      await waitForOpen(child)
      const err = await expectReject(Log.open(dir, OPEN), 'LOCKED', 'open while the child holds the directory')
      assert.match(err.message, `pid ${child.proc.pid}`)
      child.proc.kill('SIGKILL')
      await bounded(child.closed, WAIT_MS, 'child exit after SIGKILL')
      assert.is(child.proc.signalCode, 'SIGKILL')
    } finally {
      await killHard(child, WAIT_MS)
    }

    const after = await Log.open(dir, OPEN)
    try {
      assert.is(after.openedCleanly, false, 'the child removed the marker on open and never closed')
      const t = after.topic('t')
      assert.equal(values(t, 0), ['a'])
      assert.equal(values(t, 1), ['b'])
    } finally {
      await after.close()
    }
  }))

test('a child process cannot open a directory the parent holds, and can once the parent closes', () =>
  withTempDir(async (dir) => {
    const log = await Log.open(dir, OPEN)
    const refused = spawnOpenLog(dir)
    try {
      await bounded(refused.closed, WAIT_MS, 'refused child exit')
      assert.is(refused.proc.exitCode, 1, refused.output())
      assert.ok(refused.output().split('\n').includes('LOCKED'), refused.output())
      assert.match(refused.output(), `pid ${process.pid}`)
    } finally {
      await killHard(refused, WAIT_MS)
      await log.close()
    }
    const child = spawnOpenLog(dir)
    try {
      await waitForOpen(child)
      // Closing stdin asks the child to close cleanly.
      child.proc.stdin!.end()
      await bounded(child.closed, WAIT_MS, 'child exit after stdin closed')
      assert.is(child.proc.exitCode, 0, child.output())
    } finally {
      await killHard(child, WAIT_MS)
    }
    const again = await Log.open(dir, OPEN)
    try {
      assert.ok(again.openedCleanly)
    } finally {
      await again.close()
    }
  }))

// --- topics ------------------------------------------------------------------------------------

test('createTopic, topics(), topic() and deleteTopic keep the files on disk in step', () =>
  withTempDir(async (dir) => {
    const log = await Log.open(dir, OPEN)
    try {
      assert.equal(log.topics(), [])
      const a = await log.createTopic('a', { partitions: 3 })
      const b = await log.createTopic('b')
      await log.createTopic('C.d_e-9')
      assert.equal(log.topics(), ['C.d_e-9', 'a', 'b'])
      assert.is(log.topic('a'), a)
      assert.is(a.partitionCount, 3)
      assert.is(b.partitionCount, 1)
      assert.ok(log.hasTopic('b'))
      for (const p of ['0', '1', '2']) assert.ok(fs.statSync(path.join(dir, 'topics', 'a', p)).isDirectory(), `topics/a/${p}`)
      assert.not.ok(fs.existsSync(path.join(dir, 'topics', 'a', '3')))
      assert.ok(fs.existsSync(path.join(dir, 'topics', 'a', 'topic.meta')))
      await b.append([{ value: 'doomed' }])
      assert.ok(fs.existsSync(path.join(dir, 'topics', 'b', '0', '00000000000000000000.log')))

      await log.deleteTopic('b')
      assert.equal(log.topics(), ['C.d_e-9', 'a'])
      assert.not.ok(log.hasTopic('b'))
      await expectReject(() => log.topic('b'), 'UNKNOWN_TOPIC', 'topic() after delete')
      assert.not.ok(fs.existsSync(path.join(dir, 'topics', 'b')), 'topic directory removed')
      assert.equal(fs.readdirSync(path.join(dir, 'trash')), [], 'nothing left in trash/')
      await expectReject(log.deleteTopic('b'), 'UNKNOWN_TOPIC', 'second delete')
      await expectReject(b.append([{ value: 'late' }]), 'LOG_CLOSED', 'append through a deleted topic')

      // The name can be used again, and starts empty.
      const b2 = await log.createTopic('b')
      assert.is(b2.partition(0).logEndOffset, 0)
      assert.equal(values(b2, 0), [])
    } finally {
      await log.close()
    }
    const again = await Log.open(dir, OPEN)
    try {
      assert.equal(again.topics(), ['C.d_e-9', 'a', 'b'])
      assert.equal(values(again.topic('b'), 0), [])
    } finally {
      await again.close()
    }
  }))

test('reopen restores topics with their partition counts, data and per-topic overrides (retentionHours as retentionMs)', () =>
  withTempDir(async (dir) => {
    const defaults = { retentionMs: 60_000, indexIntervalBytes: 100 }
    const log = await Log.open(dir, { ...OPEN, defaults })
    const x = await log.createTopic('x', { partitions: 4, config: { retentionHours: 5, segmentBytes: 2048, flush: 'always' } })
    const y = await log.createTopic('y', { partitions: 2 })
    const z = await log.createTopic('z', { config: { flush: { intervalMs: 50, messages: 10 }, retentionBytes: 1 << 20, maxMessageBytes: 4096 } })
    assert.is(x.config.retentionMs, 5 * 3_600_000)
    for (let p = 0; p < 4; p++) await x.append([{ value: `x${p}`, partition: p }])
    await y.append([{ value: 'y1', partition: 1 }])
    await z.append([{ value: 'z0' }])
    await log.close()

    const meta = JSON.parse(readFrame('STTM', path.join(dir, 'topics', 'x', 'topic.meta'))!.toString())
    assert.equal(meta.config, { retentionMs: 5 * 3_600_000, segmentBytes: 2048, flush: 'always' }, 'only the overrides are stored')
    assert.is(meta.partitions, 4)

    // A different default now: topics that did not override it follow it.
    const again = await Log.open(dir, { ...OPEN, defaults: { retentionMs: 120_000 } })
    try {
      assert.equal(again.topics(), ['x', 'y', 'z'])
      const x2 = again.topic('x')
      assert.is(x2.partitionCount, 4)
      assert.equal(x2.config, { ...TOPIC_DEFAULTS, retentionMs: 5 * 3_600_000, segmentBytes: 2048, flush: 'always' })
      for (let p = 0; p < 4; p++) assert.equal(values(x2, p), [`x${p}`])
      const y2 = again.topic('y')
      assert.is(y2.partitionCount, 2)
      assert.equal(y2.config, { ...TOPIC_DEFAULTS, retentionMs: 120_000 })
      assert.equal(values(y2, 0), [])
      assert.equal(values(y2, 1), ['y1'])
      const z2 = again.topic('z')
      assert.equal(z2.config, { ...TOPIC_DEFAULTS, retentionMs: 120_000, flush: { intervalMs: 50, messages: 10 }, retentionBytes: 1 << 20, maxMessageBytes: 4096 })
      assert.equal(values(z2, 0), ['z0'])
      for (const t of [x2, y2, z2]) for (const p of t.partitions) assert.equal(p.config, t.config, `${t.name}/${p.id} config`)
    } finally {
      await again.close()
    }
  }))

test('createTopic on an existing name rejects with TOPIC_EXISTS and leaves the topic alone', () =>
  withTempDir(async (dir) => {
    const log = await Log.open(dir, OPEN)
    try {
      const t = await log.createTopic('t', { partitions: 2 })
      await t.append([{ value: 'kept', partition: 1 }])
      await expectReject(log.createTopic('t'), 'TOPIC_EXISTS', 'same options')
      await expectReject(log.createTopic('t', { partitions: 5 }), 'TOPIC_EXISTS', 'other options')
      assert.is(log.topic('t'), t)
      assert.is(t.partitionCount, 2)
      assert.equal(values(t, 1), ['kept'])
      // Two creations racing: exactly one wins.
      const race = await Promise.allSettled([log.createTopic('r'), log.createTopic('r', { partitions: 3 })])
      assert.equal(race.map((r) => r.status).sort(), ['fulfilled', 'rejected'])
      const lost = race.find((r) => r.status === 'rejected') as PromiseRejectedResult
      assert.is((lost.reason as StrandError).code, 'TOPIC_EXISTS')
      assert.equal(fs.readdirSync(path.join(dir, 'tmp')), [], 'no staging left behind')
    } finally {
      await log.close()
    }
    const again = await Log.open(dir, OPEN)
    try {
      await expectReject(again.createTopic('t'), 'TOPIC_EXISTS', 'after reopen')
      assert.equal(values(again.topic('t'), 1), ['kept'])
    } finally {
      await again.close()
    }
  }))

test('invalid topic names reject with INVALID_TOPIC and create nothing on disk', () =>
  withTempDir(async (dir) => {
    const log = await Log.open(dir, OPEN)
    try {
      const before = tree(dir)
      const names: unknown[] = ['', '.', '..', 'a/b', '../x', '/abs', 'a\\b', 'x'.repeat(250), 'sp ace', 'tab\t', 'nul\0', 'ünï', 'a:b', 'new\nline', 42, null, undefined, {}]
      for (const name of names) {
        const what = `name ${JSON.stringify(name)}`
        await expectReject(log.createTopic(name as string), 'INVALID_TOPIC', `createTopic(${what})`)
        await expectReject(() => log.topic(name as string), 'INVALID_TOPIC', `topic(${what})`)
        await expectReject(log.deleteTopic(name as string), 'INVALID_TOPIC', `deleteTopic(${what})`)
      }
      assert.equal(tree(dir), before, 'nothing created, nothing removed')
      assert.equal(log.topics(), [])
      // The limits themselves are valid.
      await log.createTopic('x'.repeat(249))
      await log.createTopic('.a')
      await log.createTopic('..b')
      assert.equal(log.topics(), ['..b', '.a', 'x'.repeat(249)])
    } finally {
      await log.close()
    }
  }))

test('createTopic with invalid options rejects with INVALID_ARGUMENT and creates nothing on disk', () =>
  withTempDir(async (dir) => {
    const log = await Log.open(dir, OPEN)
    try {
      const before = tree(dir)
      const bad: unknown[] = [null, 'three', { partitions: 0 }, { partitions: 1.5 }, { partitions: 10_001 }, { config: { bogus: 1 } },
        { config: { segmentBytes: 10 } }, { config: { retentionMs: 1, retentionHours: 1 } }, { config: { flush: 'sometimes' } }, { config: null }]
      for (const options of bad) {
        await expectReject(log.createTopic('t', options as never), 'INVALID_ARGUMENT', JSON.stringify(options))
        assert.not.ok(log.hasTopic('t'), JSON.stringify(options))
      }
      assert.equal(tree(dir), before, 'nothing created')
      await log.createTopic('t', { partitions: 2 })
    } finally {
      await log.close()
    }
  }))

test('Log.open on a path that is a file rejects with INVALID_ARGUMENT', () =>
  withTempDir(async (dir) => {
    const file = path.join(dir, 'not-a-dir')
    fs.writeFileSync(file, 'data')
    const err = await expectReject(Log.open(file, OPEN), 'INVALID_ARGUMENT', 'open of a file')
    assert.match(err.message, 'not-a-dir')
    assert.is(fs.readFileSync(file, 'utf8'), 'data', 'the file is untouched')
  }))

test('topic() and deleteTopic() of a topic that does not exist reject with UNKNOWN_TOPIC', () =>
  withTempDir(async (dir) => {
    const log = await Log.open(dir, OPEN)
    try {
      await log.createTopic('present')
      await expectReject(() => log.topic('missing'), 'UNKNOWN_TOPIC', 'topic')
      await expectReject(log.deleteTopic('missing'), 'UNKNOWN_TOPIC', 'deleteTopic')
      await expectReject(log.alterTopicConfig('missing', { retentionMs: 1 }), 'UNKNOWN_TOPIC', 'alterTopicConfig')
      assert.not.ok(log.hasTopic('missing'))
      assert.not.ok(fs.existsSync(path.join(dir, 'topics', 'missing')))
    } finally {
      await log.close()
    }
  }))

test('everything after close rejects with LOG_CLOSED, and close is idempotent', () =>
  withTempDir(async (dir) => {
    const log = await Log.open(dir, OPEN)
    const t = await log.createTopic('t')
    const p = t.partition(0)
    await p.append([{ value: 'v' }])
    await Promise.all([log.close(), log.close()])
    await log.close()
    await expectReject(() => log.topic('t'), 'LOG_CLOSED', 'topic()')
    await expectReject(log.createTopic('u'), 'LOG_CLOSED', 'createTopic()')
    await expectReject(log.deleteTopic('t'), 'LOG_CLOSED', 'deleteTopic()')
    await expectReject(log.alterTopicConfig('t', { retentionMs: 1 }), 'LOG_CLOSED', 'alterTopicConfig()')
    await expectReject(t.append([{ value: 'late' }]), 'LOG_CLOSED', 'topic.append()')
    await expectReject(p.append([{ value: 'late' }]), 'LOG_CLOSED', 'partition.append()')
    await expectReject(() => p.read(0), 'LOG_CLOSED', 'partition.read()')
    await expectReject(() => p.offsetForTimestamp(0), 'LOG_CLOSED', 'partition.offsetForTimestamp()')
    assert.is(await log.enforceRetention(), 0)
    assert.not.ok(fs.existsSync(path.join(dir, 'topics', 'u')))
    const again = await Log.open(dir, OPEN)
    try {
      assert.equal(values(again.topic('t'), 0), ['v'])
    } finally {
      await again.close()
    }
  }))

test('leftover tmp/ and trash/ contents are removed on open, and a staged topic does not appear', () =>
  withTempDir(async (dir) => {
    const log = await Log.open(dir, OPEN)
    await log.createTopic('real')
    await log.close()
    for (const sub of ['tmp', 'trash']) {
      fs.mkdirSync(path.join(dir, sub, 'xyz', '0'), { recursive: true })
      fs.writeFileSync(path.join(dir, sub, 'xyz', '0', '00000000000000000000.log'), 'junk')
      fs.writeFileSync(path.join(dir, sub, 'stray-file'), 'junk')
    }
    // A staged copy of a real topic's metadata, as a crash between staging and rename leaves it.
    fs.copyFileSync(path.join(dir, 'topics', 'real', 'topic.meta'), path.join(dir, 'tmp', 'xyz', 'topic.meta'))
    for (const mode of ['clean', 'unclean'] as const) {
      if (mode === 'unclean') {
        for (const sub of ['tmp', 'trash']) fs.mkdirSync(path.join(dir, sub, 'xyz'))
        fs.rmSync(path.join(dir, 'clean-shutdown'))
      }
      const again = await Log.open(dir, OPEN)
      try {
        assert.equal(fs.readdirSync(path.join(dir, 'tmp')), [], `${mode}: tmp/ emptied`)
        assert.equal(fs.readdirSync(path.join(dir, 'trash')), [], `${mode}: trash/ emptied`)
        assert.equal(again.topics(), ['real'], mode)
      } finally {
        await again.close()
      }
    }
  }))

// --- topic-level appends -------------------------------------------------------------------

test('topic.append places keyed records by murmur2: same key, same partition, the one partitionFor names', () =>
  withTempDir(async (dir) => {
    const log = await Log.open(dir, OPEN)
    try {
      const t = await log.createTopic('t', { partitions: 6 })
      const keys = Array.from({ length: 60 }, (_, i) => `key-${i}`)
      const first = await t.append(keys.map((key) => ({ key, value: `${key}#1` })))
      const second = await t.append([...keys].reverse().map((key) => ({ key, value: `${key}#2` })))
      const used = new Set<number>()
      keys.forEach((key, i) => {
        const expected = toPositive(murmur2(Buffer.from(key))) % 6
        assert.is(t.partitionFor(key), expected, key)
        assert.is(t.partitionFor(Buffer.from(key)), expected, `${key} as bytes`)
        assert.is(first[i].partition, expected, key)
        assert.is(second[keys.length - 1 - i].partition, expected, `${key}, second append`)
        used.add(expected)
      })
      assert.ok(used.size > 1, 'the keys spread over several partitions')
      // Each record is where the result says, and each partition holds only its keys, in order.
      for (let p = 0; p < 6; p++) {
        const part = t.partition(p)
        const recs = part.read(0).records()
        const mine = keys.filter((k) => t.partitionFor(k) === p)
        assert.equal(recs.map((r) => r.value!.toString()), [...mine.map((k) => `${k}#1`), ...[...mine].reverse().map((k) => `${k}#2`)], `partition ${p}`)
        for (const r of recs) assert.is(t.partitionFor(r.key!), p)
      }
      keys.forEach((key, i) => {
        const rec = t.partition(first[i].partition).read(first[i].offset, { maxBytes: 1 }).records()[0]
        assert.is(rec.offset, first[i].offset)
        assert.is(rec.value!.toString(), `${key}#1`)
      })
    } finally {
      await log.close()
    }
  }))

test('an explicit partition wins over the key', () =>
  withTempDir(async (dir) => {
    const log = await Log.open(dir, OPEN)
    try {
      const t = await log.createTopic('t', { partitions: 4 })
      const key = 'k'
      const natural = t.partitionFor(key)
      const other = (natural + 1) % 4
      const res = await t.append([{ key, value: 'natural' }, { key, value: 'forced', partition: other }, { key: null, value: 'no key', partition: natural }])
      assert.equal(res.map((r) => r.partition), [natural, other, natural])
      assert.equal(values(t, other), ['forced'])
      assert.equal(values(t, natural), ['natural', 'no key'])
    } finally {
      await log.close()
    }
  }))

/** Asserts that no partition of `t` holds anything, in the API or on disk. */
function assertEmpty(t: Topic, what: string): void {
  for (const p of t.partitions) {
    assert.is(p.logEndOffset, 0, `${what}: partition ${p.id} LEO`)
    assert.is(p.size, 0, `${what}: partition ${p.id} size`)
    assert.is(fs.statSync(path.join(p.dir, '00000000000000000000.log')).size, 0, `${what}: partition ${p.id} file`)
  }
}

test('an unknown explicit partition rejects with UNKNOWN_PARTITION and writes nothing in any partition', () =>
  withTempDir(async (dir) => {
    const log = await Log.open(dir, OPEN)
    try {
      const t = await log.createTopic('t', { partitions: 3 })
      for (const bad of [3, -1, 1.5, 100, Number.NaN, '0']) {
        const records = [{ key: 'a', value: 'x' }, { value: 'y', partition: 0 }, { value: 'z', partition: 2 }, { value: 'bad', partition: bad as number }]
        await expectReject(t.append(records), 'UNKNOWN_PARTITION', `partition ${String(bad)}`)
        assertEmpty(t, `partition ${String(bad)}`)
      }
      await expectReject(() => t.partition(3), 'UNKNOWN_PARTITION', 'topic.partition(3)')
      // The topic still works, from offset 0.
      const ok = await t.append([{ value: 'y', partition: 0 }, { value: 'z', partition: 2 }])
      assert.equal(ok, [{ partition: 0, offset: 0 }, { partition: 2, offset: 0 }])
    } finally {
      await log.close()
    }
  }))

test('an invalid record in a multi-partition append writes nothing anywhere', () =>
  withTempDir(async (dir) => {
    const log = await Log.open(dir, OPEN)
    try {
      const t = await log.createTopic('t', { partitions: 3, config: { maxMessageBytes: 1024 } })
      const cases: Array<[string, string, unknown[]]> = [
        ['bad value in the last partition', 'INVALID_ARGUMENT', [{ value: 'ok', partition: 0 }, { value: 'ok', partition: 1 }, { value: 42, partition: 2 }]],
        ['bad value in the first partition', 'INVALID_ARGUMENT', [{ value: 42, partition: 0 }, { value: 'ok', partition: 1 }, { value: 'ok', partition: 2 }]],
        ['bad timestamp', 'INVALID_ARGUMENT', [{ value: 'ok', partition: 0 }, { value: 'ok', partition: 1, timestamp: -5 }]],
        ['bad key type', 'INVALID_ARGUMENT', [{ key: 'a', value: 'ok' }, { key: 12, value: 'ok' }]],
        ['bad headers', 'INVALID_ARGUMENT', [{ value: 'ok', partition: 0 }, { value: 'ok', partition: 2, headers: 'nope' }]],
        ['a null record', 'INVALID_ARGUMENT', [{ value: 'ok', partition: 0 }, null]],
        ['one partition over maxMessageBytes', 'RECORD_TOO_LARGE', [{ value: 'ok', partition: 0 }, { value: 'x'.repeat(2000), partition: 1 }, { value: 'ok', partition: 2 }]],
      ]
      for (const [name, code, records] of cases) {
        await expectReject(t.append(records as never), code, name)
        assertEmpty(t, name)
      }
      const ok = await t.append([{ value: 'a', partition: 0 }, { value: 'b', partition: 1 }, { value: 'c', partition: 2 }])
      assert.equal(ok.map((r) => r.offset), [0, 0, 0])
      assert.equal([0, 1, 2].map((p) => values(t, p)), [['a'], ['b'], ['c']])
    } finally {
      await log.close()
    }
  }))

test('lowering maxMessageBytes keeps batches written under the old limit readable, even through recovery', () =>
  withTempDir(async (dir) => {
    let log = await Log.open(dir, OPEN)
    const big = Buffer.alloc(100_000, 7)
    try {
      const p = (await log.createTopic('t', { config: { maxMessageBytes: 200_000 } })).partition(0)
      await p.append([{ value: big }])
      await p.append([{ value: 'small' }])
      await log.alterTopicConfig('t', { maxMessageBytes: 10_000 })
      await expectReject(p.append([{ value: big }]), 'RECORD_TOO_LARGE', 'the new limit applies to appends')
      assert.equal(p.read(0).records()[0].value, big, 'readable on the live log')
    } finally {
      await log.close()
    }
    for (const mode of ['clean', 'unclean']) {
      if (mode === 'unclean') fs.rmSync(path.join(dir, 'clean-shutdown'))
      log = await Log.open(dir, OPEN)
      try {
        const p = log.topic('t').partition(0)
        assert.is(p.logEndOffset, 2, `${mode}: recovery kept both batches`)
        assert.equal(p.read(0).records().map((r) => r.value!.length), [100_000, 5], mode)
        assert.is(log.topic('t').config.maxMessageBytes, 10_000)
      } finally {
        await log.close()
      }
    }
  }))

test.run()
