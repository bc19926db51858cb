/**
 * Every public method × invalid arguments → a StrandError with a stable code, and no change
 * to the log: same offsets, same sizes, same files on disk.
 */
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Log, StrandError, type ErrorCode } from '../lib/index.js'
import { tempDir } from './helpers.js'

function listFiles(dir: string): string[] {
  const out: string[] = []
  for (const name of fs.readdirSync(dir)) {
    const full = path.join(dir, name)
    if (fs.statSync(full).isDirectory()) out.push(...listFiles(full).map((f) => path.join(name, f)))
    else if (name !== '.lock') out.push(`${name}:${fs.statSync(full).size}`)
  }
  return out.sort()
}

async function expectCode(code: ErrorCode, what: string, fn: () => unknown): Promise<StrandError> {
  try {
    await fn()
  } catch (err) {
    assert.instance(err, StrandError, `${what}: expected a StrandError, got ${String(err)}`)
    assert.is((err as StrandError).code, code, `${what}: ${(err as Error).message}`)
    return err as StrandError
  }
  assert.unreachable(`${what}: expected ${code}, nothing was thrown`)
  throw new Error('unreachable')
}

test('Log.open rejects bad arguments with INVALID_ARGUMENT and creates nothing', async () => {
  const { dir, cleanup } = tempDir()
  try {
    const target = path.join(dir, 'never')
    const cases: [string, () => Promise<Log>][] = [
      ['empty dir', () => Log.open('')],
      ['number dir', () => Log.open(5 as never)],
      ['null options', () => Log.open(target, null as never)],
      ['unknown default key', () => Log.open(target, { defaults: { segmentByte: 5 } as never })],
      ['tiny segmentBytes', () => Log.open(target, { defaults: { segmentBytes: 10 } })],
      ['bad flush policy', () => Log.open(target, { defaults: { flush: 'sometimes' as never } })],
      ['negative interval', () => Log.open(target, { retentionCheckIntervalMs: -1 })],
      ['clock without now', () => Log.open(target, { clock: {} as never })],
    ]
    for (const [what, fn] of cases) await expectCode('INVALID_ARGUMENT', what, fn)
    assert.not.ok(fs.existsSync(target), 'no directory was created')
  } finally {
    cleanup()
  }
})

test('a path that is a file is rejected', async () => {
  const { dir, cleanup } = tempDir()
  try {
    const file = path.join(dir, 'file')
    fs.writeFileSync(file, 'x')
    let rejected = false
    await Log.open(file).catch(() => { rejected = true })
    assert.ok(rejected, 'open of a file path rejects')
    assert.is(fs.readFileSync(file, 'utf8'), 'x')
  } finally {
    cleanup()
  }
})

test('every method rejects invalid arguments with its code and changes nothing', async () => {
  const { dir, cleanup } = tempDir()
  const log = await Log.open(dir, { retentionCheckIntervalMs: 0 })
  try {
    const topic = await log.createTopic('t', { partitions: 2, config: { maxMessageBytes: 4096 } })
    const p = topic.partition(0)
    await p.append([{ key: 'k', value: 'v' }, { value: 'w' }])
    await topic.partition(1).append([{ value: 'x' }])
    const before = { files: listFiles(dir), leo0: p.logEndOffset, leo1: topic.partition(1).logEndOffset, start: p.logStartOffset, topics: log.topics() }

    const table: [ErrorCode, string, () => unknown][] = [
      // Topics
      ['INVALID_TOPIC', 'createTopic("")', () => log.createTopic('')],
      ['INVALID_TOPIC', 'createTopic(".")', () => log.createTopic('.')],
      ['INVALID_TOPIC', 'createTopic("..")', () => log.createTopic('..')],
      ['INVALID_TOPIC', 'createTopic("../escape")', () => log.createTopic('../escape')],
      ['INVALID_TOPIC', 'createTopic("a/b")', () => log.createTopic('a/b')],
      ['INVALID_TOPIC', 'createTopic("sp ace")', () => log.createTopic('sp ace')],
      ['INVALID_TOPIC', 'createTopic(250 chars)', () => log.createTopic('x'.repeat(250))],
      ['INVALID_TOPIC', 'createTopic(number)', () => log.createTopic(7 as never)],
      ['INVALID_ARGUMENT', 'createTopic partitions 0', () => log.createTopic('u', { partitions: 0 })],
      ['INVALID_ARGUMENT', 'createTopic partitions 1.5', () => log.createTopic('u', { partitions: 1.5 })],
      ['INVALID_ARGUMENT', 'createTopic partitions "3"', () => log.createTopic('u', { partitions: '3' as never })],
      ['INVALID_ARGUMENT', 'createTopic partitions 10001', () => log.createTopic('u', { partitions: 10_001 })],
      ['INVALID_ARGUMENT', 'createTopic unknown config key', () => log.createTopic('u', { config: { retention: 5 } as never })],
      ['INVALID_ARGUMENT', 'createTopic retentionMs and retentionHours', () => log.createTopic('u', { config: { retentionMs: 1, retentionHours: 1 } })],
      ['INVALID_ARGUMENT', 'createTopic segmentBytes 2^31', () => log.createTopic('u', { config: { segmentBytes: 2 ** 31 } })],
      ['INVALID_ARGUMENT', 'createTopic flush interval 0', () => log.createTopic('u', { config: { flush: { intervalMs: 0 } } })],
      ['TOPIC_EXISTS', 'createTopic existing', () => log.createTopic('t')],
      ['UNKNOWN_TOPIC', 'deleteTopic missing', () => log.deleteTopic('missing')],
      ['INVALID_TOPIC', 'deleteTopic("..")', () => log.deleteTopic('..')],
      ['UNKNOWN_TOPIC', 'topic missing', () => log.topic('missing')],
      ['INVALID_TOPIC', 'topic("../t")', () => log.topic('../t')],
      ['INVALID_ARGUMENT', 'alterTopicConfig bad value', () => log.alterTopicConfig('t', { retentionBytes: -2 })],
      ['UNKNOWN_TOPIC', 'alterTopicConfig missing', () => log.alterTopicConfig('missing', {})],
      // Topic
      ['UNKNOWN_PARTITION', 'partition(-1)', () => topic.partition(-1)],
      ['UNKNOWN_PARTITION', 'partition(2)', () => topic.partition(2)],
      ['UNKNOWN_PARTITION', 'partition(0.5)', () => topic.partition(0.5)],
      ['INVALID_ARGUMENT', 'topic.append([])', () => topic.append([])],
      ['UNKNOWN_PARTITION', 'topic.append explicit partition 9', () => topic.append([{ value: 'a' }, { value: 'b', partition: 9 }])],
      ['INVALID_ARGUMENT', 'topic.append object key', () => topic.append([{ value: 'a', partition: 0 }, { key: {} as never, value: 'b' }])],
      ['INVALID_ARGUMENT', 'topic.append bad value in second partition', () => topic.append([{ value: 'a', partition: 0 }, { value: 5 as never, partition: 1 }])],
      // Partition append
      ['INVALID_ARGUMENT', 'append([])', () => p.append([])],
      ['INVALID_ARGUMENT', 'append(null)', () => p.append(null as never)],
      ['INVALID_ARGUMENT', 'append([null])', () => p.append([null as never])],
      ['INVALID_ARGUMENT', 'append number value', () => p.append([{ value: 'ok' }, { value: 42 as never }])],
      ['INVALID_ARGUMENT', 'append array value', () => p.append([{ value: [1, 2] as never }])],
      ['INVALID_ARGUMENT', 'append timestamp -1', () => p.append([{ value: 'x', timestamp: -1 }])],
      ['INVALID_ARGUMENT', 'append timestamp NaN', () => p.append([{ value: 'x', timestamp: NaN }])],
      ['INVALID_ARGUMENT', 'append timestamp 1.5', () => p.append([{ value: 'x', timestamp: 1.5 }])],
      ['INVALID_ARGUMENT', 'append headers number', () => p.append([{ value: 'x', headers: 5 as never }])],
      ['INVALID_ARGUMENT', 'append header value number', () => p.append([{ value: 'x', headers: { a: 5 as never } }])],
      ['INVALID_ARGUMENT', 'append leaderEpoch -2', () => p.append([{ value: 'x' }], { leaderEpoch: -2 })],
      ['RECORD_TOO_LARGE', 'append over maxMessageBytes', () => p.append([{ value: Buffer.alloc(5000) }])],
      // Reads and offsets
      ['INVALID_ARGUMENT', 'read(NaN)', () => p.read(NaN)],
      ['INVALID_ARGUMENT', 'read(1.5)', () => p.read(1.5)],
      ['INVALID_ARGUMENT', 'read("0")', () => p.read('0' as never)],
      ['OFFSET_OUT_OF_RANGE', 'read(-1)', () => p.read(-1)],
      ['OFFSET_OUT_OF_RANGE', 'read(LEO + 1)', () => p.read(p.logEndOffset + 1)],
      ['INVALID_ARGUMENT', 'read(2^60)', () => p.read(2 ** 60)],
      ['INVALID_ARGUMENT', 'read maxBytes 0', () => p.read(0, { maxBytes: 0 })],
      ['INVALID_ARGUMENT', 'read maxBytes NaN', () => p.read(0, { maxBytes: NaN })],
      ['INVALID_ARGUMENT', 'truncateTo(-1)', () => p.truncateTo(-1)],
      ['INVALID_ARGUMENT', 'truncateTo(NaN)', () => p.truncateTo(NaN)],
      ['INVALID_ARGUMENT', 'deleteRecordsBefore(NaN)', () => p.deleteRecordsBefore(NaN)],
      ['OFFSET_OUT_OF_RANGE', 'deleteRecordsBefore(LEO + 1)', () => p.deleteRecordsBefore(p.logEndOffset + 1)],
      ['INVALID_ARGUMENT', 'offsetForTimestamp(NaN)', () => p.offsetForTimestamp(NaN)],
      ['INVALID_ARGUMENT', 'offsetForTimestamp("x")', () => p.offsetForTimestamp('x' as never)],
    ]
    for (const [code, what, fn] of table) await expectCode(code, what, fn)

    assert.equal(listFiles(dir), before.files, 'files on disk unchanged')
    assert.is(p.logEndOffset, before.leo0)
    assert.is(topic.partition(1).logEndOffset, before.leo1)
    assert.is(p.logStartOffset, before.start)
    assert.equal(log.topics(), before.topics)
    // And the log still works.
    assert.equal(await p.append([{ value: 'after' }]), { baseOffset: before.leo0, lastOffset: before.leo0 })
  } finally {
    await log.close()
    cleanup()
  }
})

test('use after close rejects with LOG_CLOSED', async () => {
  const { dir, cleanup } = tempDir()
  try {
    const log = await Log.open(dir, { retentionCheckIntervalMs: 0 })
    const topic = await log.createTopic('t')
    const p = topic.partition(0)
    await p.append([{ value: 'v' }])
    await log.close()
    await log.close() // idempotent
    await expectCode('LOG_CLOSED', 'createTopic', () => log.createTopic('u'))
    await expectCode('LOG_CLOSED', 'deleteTopic', () => log.deleteTopic('t'))
    await expectCode('LOG_CLOSED', 'topic', () => log.topic('t'))
    await expectCode('LOG_CLOSED', 'append', () => p.append([{ value: 'v' }]))
    await expectCode('LOG_CLOSED', 'topic.append', () => topic.append([{ value: 'v' }]))
    await expectCode('LOG_CLOSED', 'read', () => p.read(0))
    await expectCode('LOG_CLOSED', 'offsetForTimestamp', () => p.offsetForTimestamp(0))
    await expectCode('LOG_CLOSED', 'truncateTo', () => p.truncateTo(0))
    await expectCode('LOG_CLOSED', 'deleteRecordsBefore', () => p.deleteRecordsBefore(1))
  } finally {
    cleanup()
  }
})

test.run()
