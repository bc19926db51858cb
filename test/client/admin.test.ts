/**
 * Admin: topics (create, delete, list, describe, config on a live log), offsets (by end, by
 * timestamp, record deletion) and groups (describe, list, reset and set offsets, delete).
 * Every bad argument is a typed error that changes nothing.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import path from 'node:path'
import { Log, OFFSETS_TOPIC, type Consumer, type ErrorCode } from '../../lib/index.js'
import { withTempDir } from '../helpers.js'
import { type Delivery, OPEN, closeAll, expectCode, fill, offsetsOf, recording, until, untilAsync } from './support.js'

/** Bytes of a partition's .log files on disk. */
function logBytes(log: Log, topic: string, partition: number): number {
  const dir = log.topic(topic).partition(partition).dir
  return fs.readdirSync(dir).filter((f) => f.endsWith('.log')).reduce((sum, f) => sum + fs.statSync(path.join(dir, f)).size, 0)
}

test('createTopics makes every topic and returns true; with one that existed, false, and the existing one is left alone', () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  try {
    const admin = log.admin()
    assert.is(await admin.createTopics({ topics: [{ topic: 'a', numPartitions: 3 }, { topic: 'b', config: { retentionMs: 1000 } }] }), true)
    assert.is(log.topic('a').partitionCount, 3)
    assert.is(log.topic('b').config.retentionMs, 1000)
    assert.is(await admin.createTopics({ topics: [{ topic: 'a', numPartitions: 5 }, { topic: 'c' }] }), false)
    assert.is(log.topic('a').partitionCount, 3, 'the existing topic is unchanged')
    assert.is(log.topic('c').partitionCount, 1)
    assert.equal(admin.listTopics(), ['a', 'b', 'c'])
  } finally {
    await log.close()
  }
}))

test('createTopics with a bad entry anywhere in the list creates nothing', () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  try {
    const admin = log.admin()
    const cases: Array<[ErrorCode, unknown, string]> = [
      ['INVALID_TOPIC', [{ topic: 'ok1' }, { topic: 'bad name' }], 'a bad name after a good one'],
      ['INVALID_TOPIC', [{ topic: 'ok1' }, { topic: '..' }], "'..'"],
      ['INVALID_ARGUMENT', [{ topic: 'ok1' }, { topic: 'ok2', numPartitions: 0 }], 'zero partitions'],
      ['INVALID_ARGUMENT', [{ topic: 'ok1' }, { topic: 'ok2', numPartitions: 2.5 }], 'fractional partitions'],
      ['INVALID_ARGUMENT', [{ topic: 'ok1' }, { topic: 'ok2', numPartitions: 20_000 }], 'too many partitions'],
      ['INVALID_ARGUMENT', [{ topic: 'ok1' }, { topic: 'ok2', config: { retentionMS: 5 } }], 'a config typo'],
      ['INVALID_ARGUMENT', [{ topic: 'ok1' }, { topic: 'ok2', config: { segmentBytes: 10 } }], 'a config value out of range'],
      ['INVALID_ARGUMENT', [{ topic: 'ok1' }, null], 'a null entry'],
      ['INVALID_ARGUMENT', 'ok1', 'not an array'],
    ]
    for (const [code, topics, what] of cases) {
      await expectCode(admin.createTopics({ topics } as never), code, what)
      assert.equal(admin.listTopics({ includeInternal: true }), [], `${what}: nothing created`)
      assert.equal(fs.readdirSync(path.join(dir, 'topics')), [], `${what}: nothing on disk`)
    }
    await expectCode(admin.createTopics(undefined as never), 'INVALID_ARGUMENT', 'no options')
  } finally {
    await log.close()
  }
}))

test('deleteTopics removes topics and their files; an unknown name or the internal offsets topic deletes nothing', () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  let c: Consumer | undefined
  try {
    const admin = log.admin()
    await admin.createTopics({ topics: [{ topic: 'a', numPartitions: 2 }, { topic: 'b' }, { topic: 'c' }] })
    await fill(log, 'a', 1, 3)
    c = log.consumer({ groupId: 'g' })
    await c.commitOffsets([{ topic: 'c', partition: 0, offset: 0 }])
    assert.equal(admin.listTopics({ includeInternal: true }), [OFFSETS_TOPIC, 'a', 'b', 'c'])

    await expectCode(admin.deleteTopics({ topics: ['a', 'nope'] }), 'UNKNOWN_TOPIC', 'an unknown topic')
    await expectCode(admin.deleteTopics({ topics: ['a', OFFSETS_TOPIC] }), 'INVALID_ARGUMENT', 'the offsets topic')
    await expectCode(admin.deleteTopics({ topics: ['a', 'bad name'] }), 'INVALID_TOPIC', 'a bad name')
    await expectCode(admin.deleteTopics({ topics: 'a' } as never), 'INVALID_ARGUMENT', 'not an array')
    assert.equal(admin.listTopics({ includeInternal: true }), [OFFSETS_TOPIC, 'a', 'b', 'c'], 'nothing deleted')

    await admin.deleteTopics({ topics: ['a', 'b', 'a'] })
    assert.equal(admin.listTopics(), ['c'])
    assert.equal(fs.readdirSync(path.join(dir, 'topics')).sort(), [OFFSETS_TOPIC, 'c'])
    await expectCode(() => log.topic('a'), 'UNKNOWN_TOPIC', 'deleted')
    // Commits still work: the coordinator's partition was never touched.
    await c.commitOffsets([{ topic: 'c', partition: 0, offset: 0, metadata: 'after' }])
    assert.is((await admin.fetchOffsets({ groupId: 'g' }))[0].metadata, 'after')
    assert.is(await admin.createTopics({ topics: [{ topic: 'a' }] }), true, 'the name is free again')
    assert.is(log.topic('a').partition(0).logEndOffset, 0, 'a new, empty topic')
  } finally {
    await closeAll(log, c)
  }
}))

test('listTopics is sorted and hides __consumer_offsets unless includeInternal', () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  try {
    const admin = log.admin()
    await admin.createTopics({ topics: [{ topic: 'zeta' }, { topic: 'Alpha' }, { topic: 'mid.dle' }] })
    await log.groupCoordinator()
    assert.equal(admin.listTopics(), ['Alpha', 'mid.dle', 'zeta'])
    assert.equal(admin.listTopics({ includeInternal: false }), ['Alpha', 'mid.dle', 'zeta'])
    assert.equal(admin.listTopics({ includeInternal: true }), ['Alpha', OFFSETS_TOPIC, 'mid.dle', 'zeta'], 'code-unit order: A < _ < m')
  } finally {
    await log.close()
  }
}))

test('describeTopics reports partitions, on-disk sizes, segment counts, start and end offsets, and config', () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  try {
    const admin = log.admin()
    await admin.createTopics({ topics: [{ topic: 't', numPartitions: 2, config: { segmentBytes: 1024, retentionMs: -1 } }, { topic: 'u' }] })
    const p0 = log.topic('t').partition(0)
    for (let i = 0; i < 40; i++) await p0.append([{ value: 'x'.repeat(100) }])
    await admin.deleteRecords({ topic: 't', partitions: [{ partition: 0, offset: 15 }] })
    const [t] = admin.describeTopics({ topics: ['t'] })
    assert.is(t.name, 't')
    assert.is(t.config.segmentBytes, 1024)
    assert.is(t.config.retentionMs, -1)
    assert.is(t.config.maxMessageBytes, log.topic('t').config.maxMessageBytes)
    assert.is(t.partitions.length, 2)
    const [d0, d1] = t.partitions
    assert.is(d0.partition, 0)
    assert.is(d0.logStartOffset, 15)
    assert.is(d0.logEndOffset, 40)
    assert.ok(d0.segments > 1, `rolled: ${d0.segments}`)
    assert.is(d0.segments, p0.segmentCount)
    assert.is(d0.size, logBytes(log, 't', 0), 'size is the bytes of the segments on disk')
    assert.equal(d1, { partition: 1, logStartOffset: 0, logEndOffset: 0, size: 0, segments: 1 })
    assert.equal(admin.describeTopics().map((x) => x.name), ['t', 'u'], 'all user topics by default')
    await expectCode(() => admin.describeTopics({ topics: ['t', 'nope'] }), 'UNKNOWN_TOPIC', 'unknown topic')
    await expectCode(() => admin.describeTopics({ topics: 't' as never }), 'INVALID_ARGUMENT', 'not an array')
  } finally {
    await log.close()
  }
}))

test('fetchTopicOffsets gives each partition its log end (offset, high) and log start (low)', () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  try {
    const admin = log.admin()
    await admin.createTopics({ topics: [{ topic: 't', numPartitions: 3 }] })
    await fill(log, 't', 0, 5)
    await fill(log, 't', 2, 7)
    await admin.deleteRecords({ topic: 't', partitions: [{ partition: 2, offset: 4 }] })
    assert.equal(admin.fetchTopicOffsets('t'), [
      { partition: 0, offset: 5, high: 5, low: 0 },
      { partition: 1, offset: 0, high: 0, low: 0 },
      { partition: 2, offset: 7, high: 7, low: 4 },
    ])
    await expectCode(() => admin.fetchTopicOffsets('nope'), 'UNKNOWN_TOPIC', 'unknown topic')
  } finally {
    await log.close()
  }
}))

test('fetchTopicOffsetsByTimestamp finds the first offset at or after a time, the log end past the newest', () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  try {
    const admin = log.admin()
    await admin.createTopics({ topics: [{ topic: 't', numPartitions: 2 }] })
    const p0 = log.topic('t').partition(0)
    await p0.append([{ value: 'a', timestamp: 1000 }, { value: 'b', timestamp: 2000 }])
    await p0.append([{ value: 'c', timestamp: 3000 }])
    await p0.append([{ value: 'd', timestamp: 3000 }, { value: 'e', timestamp: 5000 }])
    await log.topic('t').partition(1).append([{ value: 'z', timestamp: 4000 }])
    const at = (ts: number) => admin.fetchTopicOffsetsByTimestamp('t', ts)
    assert.equal(at(0), [{ partition: 0, offset: 0 }, { partition: 1, offset: 0 }])
    assert.equal(at(1500), [{ partition: 0, offset: 1 }, { partition: 1, offset: 0 }])
    assert.equal(at(3000), [{ partition: 0, offset: 2 }, { partition: 1, offset: 0 }])
    assert.equal(at(4500), [{ partition: 0, offset: 4 }, { partition: 1, offset: 1 }])
    assert.equal(at(9999), [{ partition: 0, offset: 5 }, { partition: 1, offset: 1 }])
    await admin.deleteRecords({ topic: 't', partitions: [{ partition: 0, offset: 3 }] })
    assert.equal(at(1500)[0], { partition: 0, offset: 3 }, 'never below the log start')
    await expectCode(() => at(1.5), 'INVALID_ARGUMENT', 'fractional timestamp')
    await expectCode(() => admin.fetchTopicOffsetsByTimestamp('nope', 0), 'UNKNOWN_TOPIC', 'unknown topic')
  } finally {
    await log.close()
  }
}))

test('deleteRecords moves the log start (-1 means the log end); an offset past the end anywhere in the list changes nothing', () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  try {
    const admin = log.admin()
    await admin.createTopics({ topics: [{ topic: 't', numPartitions: 2 }] })
    await fill(log, 't', 0, 10)
    await fill(log, 't', 1, 10)
    const starts = () => log.topic('t').partitions.map((p) => p.logStartOffset)
    await expectCode(admin.deleteRecords({ topic: 't', partitions: [{ partition: 0, offset: 5 }, { partition: 1, offset: 11 }] }), 'OFFSET_OUT_OF_RANGE', 'past the end')
    await expectCode(admin.deleteRecords({ topic: 't', partitions: [{ partition: 0, offset: 5 }, { partition: 1, offset: -2 }] }), 'OFFSET_OUT_OF_RANGE', 'negative')
    await expectCode(admin.deleteRecords({ topic: 't', partitions: [{ partition: 0, offset: 5 }, { partition: 2, offset: 1 }] }), 'UNKNOWN_PARTITION', 'unknown partition')
    await expectCode(admin.deleteRecords({ topic: 'nope', partitions: [] }), 'UNKNOWN_TOPIC', 'unknown topic')
    await expectCode(admin.deleteRecords({ topic: 't', partitions: {} as never }), 'INVALID_ARGUMENT', 'not an array')
    assert.equal(starts(), [0, 0], 'nothing deleted')

    await admin.deleteRecords({ topic: 't', partitions: [{ partition: 0, offset: 4 }, { partition: 1, offset: -1 }] })
    assert.equal(starts(), [4, 10])
    await expectCode(() => log.topic('t').partition(0).read(3), 'OFFSET_OUT_OF_RANGE', 'deleted records are gone')
    assert.is(log.topic('t').partition(0).read(4).records()[0].value?.toString(), 'v4')
    await admin.deleteRecords({ topic: 't', partitions: [{ partition: 0, offset: 2 }] })
    assert.equal(starts(), [4, 10], 'the log start never moves back')
  } finally {
    await log.close()
  }
}))

test('alterTopicConfig changes a live topic (and survives reopen); a bad config changes nothing', () => withTempDir(async (dir) => {
  let log = await Log.open(dir, OPEN)
  try {
    const admin = log.admin()
    await admin.createTopics({ topics: [{ topic: 't', config: { retentionMs: 60_000 } }] })
    const p = log.topic('t').partition(0)
    await p.append([{ value: 'x'.repeat(2000) }])
    const altered = await admin.alterTopicConfig({ topic: 't', config: { maxMessageBytes: 1024 } })
    assert.is(altered.maxMessageBytes, 1024)
    assert.is(altered.retentionMs, 60_000, 'merged into the existing overrides')
    await expectCode(p.append([{ value: 'x'.repeat(2000) }]), 'RECORD_TOO_LARGE', 'the live partition enforces the new limit')
    assert.is(admin.describeTopics({ topics: ['t'] })[0].config.maxMessageBytes, 1024)
    assert.is(p.read(0).records()[0].value?.length, 2000, 'the larger batch already written is still read')

    await expectCode(admin.alterTopicConfig({ topic: 't', config: { maxMessageBytes: 'big' } as never }), 'INVALID_ARGUMENT', 'a bad value')
    await expectCode(admin.alterTopicConfig({ topic: 't', config: { retention: 5 } as never }), 'INVALID_ARGUMENT', 'an unknown key')
    await expectCode(admin.alterTopicConfig({ topic: 'nope', config: { retentionMs: 5 } }), 'UNKNOWN_TOPIC', 'unknown topic')
    assert.equal(admin.describeTopics({ topics: ['t'] })[0].config, altered, 'nothing changed')
  } finally {
    await log.close()
  }
  log = await Log.open(dir, OPEN)
  try {
    const p = log.topic('t').partition(0)
    assert.is(p.config.maxMessageBytes, 1024)
    assert.is(p.config.retentionMs, 60_000)
    assert.is(p.read(0).records()[0].value?.length, 2000, 'recovery kept the batch written under the old limit')
  } finally {
    await log.close()
  }
}))

test('describeGroups and listGroups: members with their assignment, committed offsets and lag = LEO − committed', () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  const consumers: Consumer[] = []
  try {
    const admin = log.admin()
    await admin.createTopics({ topics: [{ topic: 't', numPartitions: 2 }] })
    await fill(log, 't', 0, 10)
    await fill(log, 't', 1, 4)
    const got: Delivery[] = []
    consumers.push(await recording(log, 'one', { groupId: 'g', autoOffsetReset: 'earliest', autoCommitIntervalMs: 0, maxWaitMs: 50 }, got, (c) => c.subscribe({ topic: 't' })))
    consumers.push(await recording(log, 'two', { groupId: 'g', autoOffsetReset: 'earliest', autoCommitIntervalMs: 0, maxWaitMs: 50 }, got, (c) => c.subscribe({ topic: 't' })))
    await until(() => got.length >= 14, 'delivery')
    await until(() => consumers.every((c) => c.assignment().length === 1), 'one partition each')
    await admin.setOffsets({ groupId: 'idle', topic: 't', partitions: [{ partition: 0, offset: 3 }] })
    await untilAsync(async () => {
      const offsets = await admin.fetchOffsets({ groupId: 'g' })
      return offsets.length === 2 && offsets.every((o) => o.committed === o.logEndOffset)
    }, 'both partitions committed')
    await fill(log, 't', 0, 5)

    const [g, idle, none] = await admin.describeGroups(['g', 'idle', 'none'])
    assert.is(g.groupId, 'g')
    assert.is(g.state, 'Stable')
    assert.is(g.protocol, 'range')
    assert.ok(g.generation >= 2, `a generation per rebalance: ${g.generation}`)
    assert.equal(g.members.map((m) => [m.clientId, m.memberId, m.assignment]).sort(),
      consumers.map((c) => [c.memberId === null ? '' : c.memberId.split('-')[0], c.memberId, c.assignment()]).sort())
    // The consumers may have caught up with the 5 new records already; lag follows what they committed.
    for (const o of g.offsets) {
      assert.is(o.logEndOffset, o.partition === 0 ? 15 : 4)
      assert.is(o.lag, o.logEndOffset - o.committed)
    }
    assert.equal(idle, { groupId: 'idle', state: 'Empty', protocol: null, generation: 0, members: [], offsets: [{ topic: 't', partition: 0, committed: 3, logEndOffset: 15, lag: 12, metadata: null }] })
    assert.is(none.state, 'Dead')
    assert.equal(await admin.listGroups(), [{ groupId: 'g', state: 'Stable' }, { groupId: 'idle', state: 'Empty' }])
    assert.equal(await admin.fetchOffsets({ groupId: 'idle', topics: ['other'] }), [])
    await expectCode(admin.describeGroups('g' as never), 'INVALID_ARGUMENT', 'not an array')
    await expectCode(admin.fetchOffsets({ groupId: '' }), 'INVALID_ARGUMENT', 'empty group id')
  } finally {
    await closeAll(log, ...consumers)
  }
}))

test('resetOffsets and setOffsets need a group without members (GROUP_NOT_EMPTY), then move where it resumes', () => withTempDir(async (dir) => {
  const log = await Log.open(dir, OPEN)
  let c: Consumer | undefined
  let after: Consumer | undefined
  try {
    const admin = log.admin()
    await admin.createTopics({ topics: [{ topic: 't', numPartitions: 2 }] })
    await fill(log, 't', 0, 10)
    await fill(log, 't', 1, 10)
    await admin.deleteRecords({ topic: 't', partitions: [{ partition: 1, offset: 2 }] })
    const got: Delivery[] = []
    c = await recording(log, 'member', { groupId: 'g', autoOffsetReset: 'earliest', autoCommitIntervalMs: 0, maxWaitMs: 50 }, got, (c) => c.subscribe({ topic: 't' }))
    await until(() => got.length >= 18, 'delivery')
    const committed = async () => (await admin.fetchOffsets({ groupId: 'g' })).map((o) => [o.partition, o.committed])
    await untilAsync(async () => JSON.stringify(await committed()) === '[[0,10],[1,10]]', 'both partitions committed')

    await expectCode(admin.resetOffsets({ groupId: 'g', topic: 't', earliest: true }), 'GROUP_NOT_EMPTY', 'reset with a member')
    await expectCode(admin.setOffsets({ groupId: 'g', topic: 't', partitions: [{ partition: 0, offset: 1 }] }), 'GROUP_NOT_EMPTY', 'set with a member')
    assert.equal(await committed(), [[0, 10], [1, 10]], 'nothing changed')
    await c.close()

    await admin.resetOffsets({ groupId: 'g', topic: 't', earliest: true })
    assert.equal(await committed(), [[0, 0], [1, 2]], 'earliest is each log start')
    await admin.resetOffsets({ groupId: 'g', topic: 't' })
    assert.equal(await committed(), [[0, 10], [1, 10]], 'latest is each log end')
    await expectCode(admin.setOffsets({ groupId: 'g', topic: 't', partitions: [{ partition: 0, offset: 4 }, { partition: 1, offset: 1 }] }), 'OFFSET_OUT_OF_RANGE', 'below the log start')
    await expectCode(admin.setOffsets({ groupId: 'g', topic: 't', partitions: [{ partition: 0, offset: 4 }, { partition: 1, offset: 11 }] }), 'OFFSET_OUT_OF_RANGE', 'past the log end')
    await expectCode(admin.setOffsets({ groupId: 'g', topic: 't', partitions: [{ partition: 0, offset: 4 }, { partition: 5, offset: 1 }] }), 'UNKNOWN_PARTITION', 'unknown partition')
    await expectCode(admin.setOffsets({ groupId: 'g', topic: 'nope', partitions: [] }), 'UNKNOWN_TOPIC', 'unknown topic')
    await expectCode(admin.resetOffsets({ groupId: 'a\0b', topic: 't' }), 'INVALID_ARGUMENT', 'NUL in the group id')
    assert.equal(await committed(), [[0, 10], [1, 10]], 'nothing changed')

    await admin.setOffsets({ groupId: 'g', topic: 't', partitions: [{ partition: 0, offset: 7 }, { partition: 1, offset: 5 }] })
    assert.equal(await committed(), [[0, 7], [1, 5]])
    const resumed: Delivery[] = []
    after = await recording(log, 'after', { groupId: 'g', autoOffsetReset: 'none', maxWaitMs: 50 }, resumed, (c) => c.subscribe({ topic: 't' }))
    await until(() => resumed.length >= 8, 'resumed delivery')
    assert.equal(offsetsOf(resumed, 't', 0), [7, 8, 9])
    assert.equal(offsetsOf(resumed, 't', 1), [5, 6, 7, 8, 9])
  } finally {
    await closeAll(log, c, after)
  }
}))

test.run()
