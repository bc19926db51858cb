/**
 * `strand produce`: appends stdin, one record per line, through the library's producer
 * (kafka-console-producer). Lines are read as UTF-8 text; a trailing newline does not make an
 * empty record, an empty line does.
 *
 * Reading is paced by the producer: at most MAX_IN_FLIGHT sends wait for their
 * acknowledgement before stdin is paused, so a large input holds bounded memory.
 */
import readline from 'node:readline'
import type { Acks } from '../client/options.js'
import type { Message, RecordMetadata } from '../client/producer.js'
import { CliError, type Command, UsageError, withLog } from './args.js'
import { note, plural } from './output.js'

/** Lines per send: one batch per partition per send, large enough that per-send costs vanish. */
const LINES_PER_SEND = 1000
const MAX_IN_FLIGHT = 16

const help = `Usage:
  strand produce --dir <path> --topic <name> [--key-separator <sep>] [--partition <n>] [--acks 0|1|all]

Reads stdin until it ends (or Ctrl-C) and appends one record per line; prints a summary to stderr.

Options:
  --topic <name>          the topic to append to (it must exist)
  --key-separator <sep>   each line is <key><sep><value>, split at the first <sep>; a line without it is an
                          error (the lines before it are kept). Without this option records have no key.
  --partition <n>         append every record to this partition (default: by key, murmur2 like Kafka;
                          without keys, sticky batches)
  --acks 0|1|all          when a send counts as done (default all; see docs/durability.md). Whatever the
                          setting, everything is flushed to the topic before the command exits.
  --dir <path>            the data directory (or set STRAND_DIR)

Examples:
  printf 'a:1\\nb:2\\n' | strand produce --dir ./data --topic orders --key-separator :
  strand produce --dir ./data --topic logs < app.log
`

export const produce: Command = {
  name: 'produce',
  summary: 'append lines from stdin to a topic',
  help,
  options: {
    topic: { type: 'string' },
    'key-separator': { type: 'string' },
    partition: { type: 'string' },
    acks: { type: 'string' },
  },
  async run(args, signal) {
    const dir = args.dir()
    const topic = args.topic()
    const separator = args.string('key-separator')
    if (separator === '') throw new UsageError('Expected --key-separator to be a non-empty string, got ""')
    const partition = args.int('partition', 0)
    const acksArg = args.choice('acks', ['0', '1', '-1', 'all'], 'all')
    const acks: Acks = acksArg === 'all' ? 'all' : (Number(acksArg) as 0 | 1 | -1)

    return withLog(dir, async (log) => {
      const t = log.topic(topic)
      if (partition !== undefined) t.partition(partition)
      const producer = log.producer({ acks })
      const tally = new Tally()
      const inFlight = new Set<Promise<void>>()
      let pending: Message[] = []
      let lineNumber = 0
      let failure: Error | null = null

      const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false })
      let closed = false
      const ended = new Promise<void>((resolve) => rl.once('close', () => { closed = true; resolve() }))
      const send = (): void => {
        if (pending.length === 0) return
        const messages = pending
        pending = []
        const p = producer.send({ topic, messages }).then((r) => tally.add(r), (err: Error) => { failure ??= err; rl.close() })
        inFlight.add(p)
        void p.finally(() => {
          inFlight.delete(p)
          if (inFlight.size < MAX_IN_FLIGHT && !closed) rl.resume()
        })
        if (inFlight.size >= MAX_IN_FLIGHT) rl.pause()
      }
      let scheduled = false
      rl.on('line', (line) => {
        if (failure !== null) return
        lineNumber++
        let message: Message = { value: line }
        if (separator !== undefined) {
          const at = line.indexOf(separator)
          if (at < 0) {
            failure = new CliError(`line ${lineNumber} has no key separator ${JSON.stringify(separator)}; the records before it were kept`)
            rl.close()
            return
          }
          message = { key: line.slice(0, at), value: line.slice(at + separator.length) }
        }
        if (partition !== undefined) message.partition = partition
        pending.push(message)
        if (pending.length >= LINES_PER_SEND) send()
        else if (!scheduled) {
          // Lines that arrive in one chunk go out in one send.
          scheduled = true
          setImmediate(() => { scheduled = false; send() })
        }
      })
      const onAbort = (): void => { rl.close() }
      signal.addEventListener('abort', onAbort, { once: true })
      if (signal.aborted) onAbort()
      await ended
      signal.removeEventListener('abort', onAbort)
      // Lines read before a bad one still go out.
      send()
      await Promise.all(inFlight)
      try {
        await producer.close()
      } catch (err) {
        failure ??= err instanceof AggregateError ? err.errors[0] : err as Error
      }
      note(tally.summary(topic, acks === 0))
      if (failure !== null) throw failure
      return 0
    })
  },
}

/** Per partition: records and the offset range they took. */
class Tally {
  readonly #partitions = new Map<number, { count: number, first: number, last: number }>()
  #count = 0

  add(results: readonly RecordMetadata[]): void {
    for (const r of results) {
      this.#count++
      const p = this.#partitions.get(r.partition)
      if (p === undefined) this.#partitions.set(r.partition, { count: 1, first: r.offset, last: r.offset })
      else {
        p.count++
        if (r.offset >= 0 && (p.first < 0 || r.offset < p.first)) p.first = r.offset
        if (r.offset > p.last) p.last = r.offset
      }
    }
  }

  summary(topic: string, noOffsets: boolean): string {
    const parts = [...this.#partitions].sort((a, b) => a[0] - b[0]).map(([id, p]) =>
      `partition ${id}: ${plural(p.count, 'record')}${noOffsets ? '' : `, offsets ${p.first}..${p.last}`}`)
    return `Produced ${plural(this.#count, 'record')} to ${topic}${parts.length > 0 ? ` (${parts.join('; ')})` : ''}.`
  }
}
