/**
 * `strand consume`: prints a topic's records, one a line (kafka-console-consumer), through the
 * library's consumer, alone or in a consumer group whose offsets it commits.
 *
 * It stops at the end of the log. Kafka's console consumer waits for new records until it is
 * interrupted, but here no other process can append while this one holds the directory lock,
 * so once every partition has been read to its end there is nothing to wait for. It also stops
 * after --max-messages, after --timeout-ms without a record, or on Ctrl-C. In a group it
 * commits exactly what it printed: a record is resolved only after its line is written.
 */
import type { Partition } from '../partition.js'
import type { Record } from '../codec/record-batch.js'
import type { Consumer } from '../client/consumer.js'
import type { Log } from '../log.js'
import { type Args, type Command, UsageError, parseInteger, withLog } from './args.js'
import { note, out, plural } from './output.js'

const help = `Usage:
  strand consume --dir <path> --topic <name> [--from-beginning] [--group <id>] [--max-messages <n>]
                 [--partition <n> [--offset <o>|earliest|latest]] [--timeout-ms <ms>]
                 [--print-key] [--print-offset] [--print-timestamp] [--print-headers] [--format text|json]

Prints records, one a line, to stdout and "Processed a total of N messages" to stderr. Stops at the end of
the log (no other process can append while this one has the directory open), after --max-messages, after
--timeout-ms without a record, or on Ctrl-C.

Options:
  --topic <name>        the topic to read
  --from-beginning      start at the log start offset when there is no committed offset (default: the end,
                        like Kafka, which prints nothing new unless a group has committed offsets)
  --group <id>          read as a member of this consumer group: start from its committed offsets and
                        commit what was printed when done
  --max-messages <n>    stop after printing n records
  --partition <n>       read only this partition
  --offset <o>          with --partition: start at offset o, or earliest, or latest
  --timeout-ms <ms>     stop when no record arrives for ms milliseconds
  --print-key           print the key before the value (tab-separated; "null" for none)
  --print-offset        print Partition:<n> and Offset:<o> before the record
  --print-timestamp     print CreateTime:<ms> before the record
  --print-headers       print headers as key:value,… (NO_HEADERS when none)
  --format text|json    text (default, the value as UTF-8) or one JSON object per record with every field
  --dir <path>          the data directory (or set STRAND_DIR)

Examples:
  strand consume --dir ./data --topic orders --from-beginning --print-key --max-messages 10
  strand consume --dir ./data --topic orders --group billing --format json
`

interface Printing { key: boolean, offset: boolean, timestamp: boolean, headers: boolean, json: boolean }

export const consume: Command = {
  name: 'consume',
  summary: 'print a topic\'s records, alone or in a consumer group',
  help,
  options: {
    topic: { type: 'string' },
    'from-beginning': { type: 'boolean' },
    group: { type: 'string' },
    'max-messages': { type: 'string' },
    partition: { type: 'string' },
    offset: { type: 'string' },
    'timeout-ms': { type: 'string' },
    'print-key': { type: 'boolean' },
    'print-offset': { type: 'boolean' },
    'print-timestamp': { type: 'boolean' },
    'print-headers': { type: 'boolean' },
    format: { type: 'string' },
  },
  async run(args, signal) {
    const dir = args.dir()
    const topic = args.topic()
    const group = args.has('group') ? args.group() : undefined
    const max = args.int('max-messages', 1)
    const partition = args.int('partition', 0)
    const timeoutMs = args.int('timeout-ms', 1, 2 ** 31 - 1)
    const fromBeginning = args.flag('from-beginning')
    const offset = startOffsetArg(args, partition, fromBeginning)
    const printing: Printing = {
      key: args.flag('print-key'), offset: args.flag('print-offset'), timestamp: args.flag('print-timestamp'),
      headers: args.flag('print-headers'), json: args.choice('format', ['text', 'json'], 'text') === 'json',
    }
    return withLog(dir, async (log) => {
      const t = log.topic(topic)
      const parts = partition === undefined ? t.partitions : [t.partition(partition)]
      const consumer = log.consumer({ groupId: group, autoOffsetReset: fromBeginning ? 'earliest' : 'latest' })
      const session = new Session(consumer, parts, max, timeoutMs, printing)
      const onAbort = (): void => session.finish()
      signal.addEventListener('abort', onAbort, { once: true })
      if (signal.aborted) onAbort()
      try {
        await session.run(log, topic, group, partition === undefined, offset, fromBeginning)
      } finally {
        signal.removeEventListener('abort', onAbort)
      }
      const count = session.printed
      note(`Processed a total of ${plural(count, 'message')}`)
      if (count === 0 && session.startedAtEnd) note('Every partition was read from its end; add --from-beginning to read what is in the log.')
      return 0
    })
  },
}

/** --offset: a number, earliest or latest; only with --partition, and not with --from-beginning. */
function startOffsetArg(args: Args, partition: number | undefined, fromBeginning: boolean): number | 'earliest' | 'latest' | undefined {
  const v = args.string('offset')
  if (v === undefined) return undefined
  if (partition === undefined) throw new UsageError('--offset needs --partition (an offset belongs to one partition)')
  if (fromBeginning) throw new UsageError('--offset and --from-beginning cannot be used together')
  return v === 'earliest' || v === 'latest' ? v : parseInteger('--offset', v, 0)
}

/** One run of the consumer: delivery, printing, and deciding when to stop. */
class Session {
  printed = 0
  startedAtEnd = false
  readonly #consumer: Consumer
  readonly #partitions: readonly Partition[]
  readonly #max: number | undefined
  readonly #timeoutMs: number | undefined
  readonly #printing: Printing
  /** Per partition: the next offset to print, once something was printed. */
  readonly #positions = new Map<number, number>()
  /** Per partition: where reading started; null until known (a group assigns first). */
  #starts: Map<number, number> | null = null
  #done = false
  #failure: unknown = null
  #idle: NodeJS.Timeout | null = null
  #resolveEnded!: () => void
  readonly #ended = new Promise<void>((resolve) => { this.#resolveEnded = resolve })

  constructor(consumer: Consumer, partitions: readonly Partition[], max: number | undefined, timeoutMs: number | undefined, printing: Printing) {
    this.#consumer = consumer
    this.#partitions = partitions
    this.#max = max
    this.#timeoutMs = timeoutMs
    this.#printing = printing
  }

  finish(err?: unknown): void {
    if (err !== undefined) this.#failure ??= err
    this.#done = true
    if (this.#idle !== null) clearTimeout(this.#idle)
    this.#resolveEnded()
  }

  async run(log: Log, topic: string, group: string | undefined, whole: boolean, offset: number | 'earliest' | 'latest' | undefined, fromBeginning: boolean): Promise<void> {
    const c = this.#consumer
    c.on('crash', (err) => this.finish(err))
    const starts = new Map<number, number>()
    const subscribing = group !== undefined && whole
    if (subscribing) {
      await c.subscribe({ topic, fromBeginning })
    } else {
      // Without a group, or for one partition, the consumer is given its partitions and start
      // offsets: --offset, else the group's committed offset, else the reset policy.
      const committed = group === undefined ? [] : await log.admin().fetchOffsets({ groupId: group, topics: [topic] })
      for (const p of this.#partitions) {
        const mine = committed.find((o) => o.partition === p.id)?.committed ?? null
        starts.set(p.id, offset === undefined ? startOf(p, mine, fromBeginning) : offset === 'earliest' ? p.logStartOffset : offset === 'latest' ? p.logEndOffset : offset)
      }
      c.assign(this.#partitions.map((p) => ({ topic, partition: p.id, offset: starts.get(p.id)! })))
      this.#starts = starts
    }
    try {
      await c.run({ eachBatch: (payload) => this.#deliver(payload.batch.partition, payload.batch.messages, payload.resolveOffset), eachBatchAutoResolve: false })
      if (subscribing) {
        // The group assigned every partition (this is its only member); each starts at the
        // committed offset or by the reset policy, which is what startOf works out.
        for (const p of this.#partitions) starts.set(p.id, startOf(p, await c.committed(topic, p.id), fromBeginning))
        this.#starts = starts
      }
      this.startedAtEnd = !fromBeginning && this.#partitions.every((p) => starts.get(p.id) === p.logEndOffset) &&
        this.#partitions.some((p) => p.logEndOffset > p.logStartOffset)
      if (this.#caughtUp()) this.finish()
      else this.#armIdle()
      await this.#ended
    } finally {
      await c.close()
    }
    if (this.#failure !== null) throw this.#failure
  }

  async #deliver(partition: number, records: Record[], resolveOffset: (offset: number) => void): Promise<void> {
    if (this.#done) return
    if (this.#idle !== null) clearTimeout(this.#idle)
    let text = ''
    let last = -1
    for (const r of records) {
      if (this.#max !== undefined && this.printed >= this.#max) break
      text += this.#format(partition, r)
      last = r.offset
      this.printed++
    }
    if (last >= 0) {
      await out(text)
      // Committed (in a group) only once printed.
      resolveOffset(last)
      this.#positions.set(partition, last + 1)
    }
    if ((this.#max !== undefined && this.printed >= this.#max) || this.#caughtUp()) this.finish()
    else this.#armIdle()
  }

  /** True when every partition has been printed up to its end (nothing can append meanwhile). */
  #caughtUp(): boolean {
    const starts = this.#starts
    return starts !== null && this.#partitions.every((p) => (this.#positions.get(p.id) ?? starts.get(p.id) ?? -1) >= p.logEndOffset)
  }

  #armIdle(): void {
    if (this.#timeoutMs === undefined || this.#done) return
    if (this.#idle !== null) clearTimeout(this.#idle)
    this.#idle = setTimeout(() => this.finish(), this.#timeoutMs)
  }

  #format(partition: number, r: Record): string {
    const p = this.#printing
    if (p.json) {
      const headers: { [key: string]: string | null } = {}
      for (const h of r.headers) headers[h.key] = h.value === null ? null : h.value.toString('utf8')
      return JSON.stringify({ partition, offset: r.offset, timestamp: r.timestamp, key: r.key?.toString('utf8') ?? null, value: r.value?.toString('utf8') ?? null, headers }) + '\n'
    }
    let line = ''
    if (p.timestamp) line += `CreateTime:${r.timestamp}\t`
    if (p.offset) line += `Partition:${partition}\tOffset:${r.offset}\t`
    if (p.headers) line += (r.headers.length === 0 ? 'NO_HEADERS' : r.headers.map((h) => `${h.key}:${h.value === null ? 'null' : h.value.toString('utf8')}`).join(',')) + '\t'
    if (p.key) line += `${r.key === null ? 'null' : r.key.toString('utf8')}\t`
    return line + (r.value === null ? 'null' : r.value.toString('utf8')) + '\n'
  }
}

/** Where the consumer starts a partition: the committed offset if still in the log, else the reset policy. */
function startOf(p: Partition, committed: number | null, fromBeginning: boolean): number {
  if (committed !== null && committed >= p.logStartOffset && committed <= p.logEndOffset) return committed
  return fromBeginning ? p.logStartOffset : p.logEndOffset
}
