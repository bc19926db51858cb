/**
 * `strand dump-log`: prints every batch of a partition's segments (kafka-dump-log), verifying
 * each checksum and the offset sequence, and optionally the records and the index entries.
 *
 * It reads the files directly, read-only, without opening the Log: no lock (it works while
 * another process has the directory open), no recovery (it shows the files as they are, damage
 * included). Exit code 1 when the log or checkpoint is damaged; index disagreements are
 * reported but do not count, since strand rebuilds indexes from the log.
 */
import fs from 'node:fs'
import path from 'node:path'
import { StrandError } from '../errors.js'
import { type Args, CliError, type Command, UsageError, parseInteger } from './args.js'
import { out, plural } from './output.js'
import { type IndexDump, type LogScan, type ScannedBatch, maxBatchOf, readCheckpoint, readIndex, scanLog, segmentBaseOf } from './segment-files.js'

const help = `Usage:
  strand dump-log --dir <path> --topic <name> --partition <n> [--segment <base offset>] [--print-records] [--indexes]
  strand dump-log --file <path/to/00000000000000000000.log> [--file …] [--print-records] [--indexes]

Prints each batch: base and last offset, record count, position and size in the file, leader epoch,
producer id/epoch/sequence, timestamps, checksum and whether it verifies. Reads the files read-only,
without the directory lock, so it works while another process has the directory open, and on damaged
files. Exits 1 if a batch or the checkpoint is damaged.

Options:
  --topic <name>      with --partition: dump the segments of this partition
  --partition <n>
  --segment <base>    only the segment with this base offset
  --file <path>       a .log file (or a .index/.timeindex, checked against its .log); repeatable
  --print-records     also print each record: offset, timestamp, key, value, headers
  --indexes           also print the .index and .timeindex entries, each checked against the log
  --dir <path>        the data directory (or set STRAND_DIR)

Examples:
  strand dump-log --dir ./data --topic orders --partition 0 --print-records
  strand dump-log --file ./data/topics/orders/0/00000000000000000000.log --indexes
`

export const dumpLog: Command = {
  name: 'dump-log',
  summary: 'print and verify the batches and indexes of segment files (read-only, no lock)',
  help,
  options: {
    topic: { type: 'string' },
    partition: { type: 'string' },
    segment: { type: 'string' },
    file: { type: 'string', multiple: true },
    'print-records': { type: 'boolean' },
    indexes: { type: 'boolean' },
  },
  async run(args) {
    const options = { records: args.flag('print-records'), indexes: args.flag('indexes') }
    const files = args.has('file') ? explicitFiles(args) : partitionFiles(args)
    let problems = 0
    const damaged: string[] = []
    if (files.checkpointOf !== null) {
      const n = await dumpCheckpoint(files.checkpointOf)
      if (n > 0) damaged.push(path.join(files.checkpointOf, 'checkpoint'))
      problems += n
    }
    for (const file of files.files) {
      const n = await dumpFile(file, options)
      if (n > 0) damaged.push(file)
      problems += n
    }
    if (problems > 0) throw new CliError(`found ${plural(problems, 'problem')} in ${damaged.join(', ')}`, 'See "DAMAGED" above. strand cuts a damaged log at the first bad batch when it recovers.')
    return 0
  },
}

function explicitFiles(args: Args): { files: string[], checkpointOf: string | null } {
  args.allowOnly('--file', ['file', 'print-records', 'indexes'])
  const files = args.strings('file').map((f) => path.resolve(f))
  for (const f of files) {
    if (segmentBaseOf(f) === null) throw new UsageError(`Expected --file to name a segment file (<20-digit base offset>.log, .index or .timeindex), got ${JSON.stringify(f)}`)
    if (!fs.existsSync(f)) throw new CliError(`${f} does not exist`)
  }
  return { files, checkpointOf: null }
}

function partitionFiles(args: Args): { files: string[], checkpointOf: string } {
  const dir = args.dir()
  const topic = args.topic()
  const partition = args.int('partition', 0)
  if (partition === undefined) throw new UsageError('missing --partition (or give --file)')
  const segment = args.string('segment') === undefined ? undefined : parseInteger('--segment', args.string('segment')!, 0)
  if (!fs.existsSync(dir)) throw new CliError(`data directory ${dir} does not exist`)
  const topicDir = path.join(dir, 'topics', topic)
  if (!fs.existsSync(topicDir)) throw new StrandError('UNKNOWN_TOPIC', `topic ${topic} does not exist in ${dir}`)
  const partitionDir = path.join(topicDir, String(partition))
  if (!fs.existsSync(partitionDir)) throw new StrandError('UNKNOWN_PARTITION', `topic ${topic} has no partition ${partition} (no ${partitionDir})`)
  const bases = fs.readdirSync(partitionDir).filter((f) => f.endsWith('.log')).map(segmentBaseOf).filter((b): b is number => b !== null).sort((a, b) => a - b)
  if (segment !== undefined && !bases.includes(segment)) {
    throw new CliError(`${partitionDir} has no segment with base offset ${segment}`, `Its segments start at: ${bases.join(', ') || '(none)'}`)
  }
  const chosen = segment === undefined ? bases : [segment]
  return { files: chosen.map((b) => path.join(partitionDir, String(b).padStart(20, '0') + '.log')), checkpointOf: partitionDir }
}

async function dumpCheckpoint(partitionDir: string): Promise<number> {
  try {
    const cp = readCheckpoint(partitionDir)
    await out(cp === null ? 'Checkpoint: none\n' : `Checkpoint: logStartOffset: ${cp.logStartOffset} recoveryPoint: ${cp.recoveryPoint}\n`)
    return 0
  } catch (err) {
    await out(`Checkpoint: DAMAGED: ${(err as Error).message}\n`)
    return 1
  }
}

/** Dumps one file; returns the number of problems in the log (index mismatches not counted). */
async function dumpFile(file: string, options: { records: boolean, indexes: boolean }): Promise<number> {
  const base = segmentBaseOf(file)!
  const stem = file.replace(/\.(log|index|timeindex)$/, '')
  const { maxBatch, from } = maxBatchOf(path.dirname(path.dirname(file)))
  if (!file.endsWith('.log')) {
    // An index on its own: checked against its log if there is one, which is not printed.
    const scan = fs.existsSync(stem + '.log') ? scanLog(stem + '.log', base, maxBatch, () => {}) : null
    await out(`Dumping ${file}\n` + formatIndex(file, readIndex(file, base, scan), scan !== null))
    return 0
  }
  await out(`Dumping ${file}\nStarting offset: ${base}  (batches up to ${maxBatch} bytes believed: ${from})\n`)
  let text = ''
  let batches = 0
  let records = 0
  let problems = 0
  let first = -1
  let last = -1
  let scan: LogScan
  try {
    scan = scanLog(file, base, maxBatch, (b) => {
      batches++
      records += b.batch.count
      if (first < 0) first = b.batch.baseOffset
      last = b.batch.lastOffset
      if (b.problem !== null) problems++
      text += formatBatch(b, options.records)
      // Flushed in pieces so a large segment is not held as one string.
      if (text.length > 1 << 20) {
        process.stdout.write(text)
        text = ''
      }
    })
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`)
  }
  if (scan.stoppedBecause !== null) problems++
  text += `Summary: ${plural(batches, 'batch', 'batches')}, ${plural(records, 'record')}` +
    (batches > 0 ? `, offsets ${first}..${last}` : '') + `, ${scan.scannedBytes} of ${scan.fileSize} bytes read` +
    (problems === 0 ? ', no damage\n' : `, ${plural(problems, 'problem')}\n`) +
    (scan.stoppedBecause === null ? '' : `DAMAGED: ${scan.stoppedBecause}\n`)
  await out(text)
  if (options.indexes) {
    for (const suffix of ['.index', '.timeindex']) {
      const index = stem + suffix
      let text: string
      try {
        text = fs.existsSync(index) ? `Dumping ${index}\n` + formatIndex(index, readIndex(index, base, scan), true) : `No ${index}\n`
      } catch (err) {
        text = `Cannot read ${index}: ${(err as Error).message}\n`
      }
      await out(text)
    }
  }
  return problems
}

function formatBatch(s: ScannedBatch, withRecords: boolean): string {
  const b = s.batch
  const seq = b.baseSequence < 0 ? -1 : b.baseSequence + b.count - 1
  let line = `baseOffset: ${b.baseOffset} lastOffset: ${b.lastOffset} count: ${b.count} position: ${s.position} size: ${b.sizeInBytes}` +
    ` leaderEpoch: ${b.leaderEpoch} producerId: ${b.producerId} producerEpoch: ${b.producerEpoch} baseSequence: ${b.baseSequence} lastSequence: ${seq}` +
    ` baseTimestamp: ${b.baseTimestamp} maxTimestamp: ${b.maxTimestamp} checksum: 0x${b.checksum.toString(16).padStart(8, '0')}` +
    (s.problem === null ? ' valid: true\n' : ` valid: false\nDAMAGED: batch at position ${s.position}: ${s.problem}\n`)
  if (withRecords) {
    try {
      for (const r of b.records()) {
        const headers = r.headers.map((h) => `${JSON.stringify(h.key)}: ${h.value === null ? 'null' : JSON.stringify(h.value.toString('utf8'))}`).join(', ')
        line += `| offset: ${r.offset} timestamp: ${r.timestamp} keySize: ${r.key?.length ?? -1} valueSize: ${r.value?.length ?? -1}` +
          ` headers: {${headers}} key: ${r.key === null ? 'null' : JSON.stringify(r.key.toString('utf8'))} value: ${r.value === null ? 'null' : JSON.stringify(r.value.toString('utf8'))}\n`
      }
    } catch (err) {
      line += `| records cannot be decoded: ${(err as Error).message}\n`
    }
  }
  return line
}

function formatIndex(file: string, dump: IndexDump, checked: boolean): string {
  const time = file.endsWith('.timeindex')
  let text = ''
  let mismatches = 0
  for (const e of dump.entries) {
    text += time ? `timestamp: ${e.value} offset: ${e.offset}` : `offset: ${e.offset} position: ${e.value}`
    if (e.problem !== null) mismatches++
    text += e.problem === null ? '\n' : `  MISMATCH: ${e.problem}\n`
  }
  text += `Index summary: ${plural(dump.entries.length, 'entry', 'entries')}` +
    (dump.preallocated > 0 ? `, ${dump.preallocated} unused preallocated (an active segment, or one not closed cleanly)` : '') +
    (dump.partialBytes > 0 ? `, ${dump.partialBytes} bytes of a partial entry` : '') +
    (!checked ? ', not checked (no .log)' : mismatches === 0 ? ', all match the log' : `, ${mismatches} do not match the log (indexes are rebuilt from the log on open)`) + '\n'
  return text
}
