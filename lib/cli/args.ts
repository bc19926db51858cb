/**
 * What every command shares: node:util's parseArgs in strict mode with its errors turned into
 * one-line usage messages, the checks run on numbers, names and configs, and opening the data
 * directory.
 *
 * Every argument is checked before the directory is opened, so a bad argument changes
 * nothing on disk (opening a Log is not free: it takes the lock, reserves producer ids and
 * rewrites the clean-shutdown marker). Errors come in two kinds: UsageError (exit 2, the
 * command line is wrong) and everything else (exit 1, the command could not be done).
 */
import fs from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { normaliseTopicConfig, type TopicConfig } from '../config.js'
import { validateTopicName } from '../topic.js'
import { Log } from '../log.js'

/** The command line is wrong: exit 2 with a pointer to the command's help. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'UsageError'
  }
}

/** The command could not be done for a reason that is not the library's (exit 1). */
export class CliError extends Error {
  /** A second line telling the user what to do about it. */
  readonly hint: string | undefined

  constructor(message: string, hint?: string) {
    super(message)
    this.name = 'CliError'
    this.hint = hint
  }
}

export interface OptionSpec { type: 'string' | 'boolean', multiple?: boolean, short?: string }
export type Options = { [name: string]: OptionSpec }

/** Options every command takes. */
export const GLOBAL_OPTIONS: Options = Object.freeze({
  dir: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
})

export interface Command {
  name: string
  /** One line for `strand --help`. */
  summary: string
  /** The whole `strand <command> --help` text. */
  help: string
  options: Options
  /** Resolves to the exit code. `signal` aborts on SIGINT/SIGTERM or a closed stdout. */
  run(args: Args, signal: AbortSignal): Promise<number>
}

/** Parses a command's arguments; any problem is a UsageError. */
export function parse(options: Options, argv: readonly string[]): Args {
  const all = { ...GLOBAL_OPTIONS, ...options }
  try {
    const { values } = parseArgs({ args: joinNegativeValues(all, argv), options: all, strict: true, allowPositionals: false })
    return new Args(values as { [name: string]: string | boolean | string[] | undefined })
  } catch (err) {
    throw new UsageError(parseErrorMessage(err as NodeJS.ErrnoException))
  }
}

/** parseArgs reads `--shift-by -2` as a missing value; numbers are values here, so glue them on. */
function joinNegativeValues(options: Options, argv: readonly string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].startsWith('--') ? argv[i].slice(2) : null
    if (name !== null && options[name]?.type === 'string' && /^-\d+$/.test(argv[i + 1] ?? '')) out.push(`${argv[i]}=${argv[++i]}`)
    else out.push(argv[i])
  }
  return out
}

function parseErrorMessage(err: NodeJS.ErrnoException): string {
  const quoted = /'(-[^' ]+)/.exec(err.message)?.[1] ?? '?'
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': return `unknown option ${quoted}`
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL': return `unexpected argument ${/'([^']*)'/.exec(err.message)?.[1] ?? ''} (every value follows an --option)`
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (err.message.includes('does not take an argument')) return `option ${quoted} takes no value`
      if (err.message.includes('ambiguous')) return `option ${quoted} needs a value (for one starting with "-", write ${quoted}=-…)`
      return `option ${quoted} needs a value`
    default: return err.message
  }
}

/** Typed access to parsed values, with the checks the commands share. */
export class Args {
  readonly #values: { [name: string]: string | boolean | string[] | undefined }

  constructor(values: { [name: string]: string | boolean | string[] | undefined }) {
    this.#values = values
  }

  /** Names of the options given, without the global ones. */
  get given(): string[] {
    return Object.keys(this.#values).filter((k) => this.#values[k] !== undefined && !(k in GLOBAL_OPTIONS))
  }

  has(name: string): boolean { return this.#values[name] !== undefined }
  flag(name: string): boolean { return this.#values[name] === true }

  string(name: string): string | undefined {
    const v = this.#values[name]
    return typeof v === 'string' ? v : undefined
  }

  strings(name: string): string[] {
    const v = this.#values[name]
    return Array.isArray(v) ? v : typeof v === 'string' ? [v] : []
  }

  require(name: string, why = ''): string {
    const v = this.string(name)
    if (v === undefined) throw new UsageError(`missing --${name}${why === '' ? '' : ` (${why})`}`)
    return v
  }

  /** An integer option in [min, max], or undefined when absent. */
  int(name: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
    const v = this.string(name)
    return v === undefined ? undefined : parseInteger(`--${name}`, v, min, max)
  }

  /** One of `choices`, or `fallback` when absent. */
  choice<T extends string>(name: string, choices: readonly T[], fallback: T): T {
    const v = this.string(name)
    if (v === undefined) return fallback
    if (!(choices as readonly string[]).includes(v)) throw new UsageError(`Expected --${name} to be one of ${choices.join(', ')}, got ${JSON.stringify(v)}`)
    return v as T
  }

  /**
   * The one action flag given among `actions`; a UsageError when none or several are. Options
   * that the action does not take are errors too, so nothing is silently ignored.
   */
  action(actions: { [action: string]: readonly string[] }): string {
    const given = Object.keys(actions).filter((a) => this.flag(a))
    const list = Object.keys(actions).map((a) => `--${a}`).join(', ')
    if (given.length === 0) throw new UsageError(`expected one of ${list}`)
    if (given.length > 1) throw new UsageError(`only one of ${list} at a time, got ${given.map((a) => `--${a}`).join(' and ')}`)
    this.allowOnly(`--${given[0]}`, [given[0], ...actions[given[0]]])
    return given[0]
  }

  /** A UsageError naming the first given option that is not in `allowed`. */
  allowOnly(context: string, allowed: readonly string[]): void {
    const extra = this.given.find((k) => !allowed.includes(k))
    if (extra !== undefined) throw new UsageError(`--${extra} cannot be used with ${context}`)
  }

  /** The data directory: --dir, else $STRAND_DIR. */
  dir(): string {
    const dir = this.string('dir') ?? process.env.STRAND_DIR
    if (dir === undefined || dir === '') throw new UsageError('missing --dir <path> (or set STRAND_DIR)')
    return path.resolve(dir)
  }

  /** --topic, checked against the naming rules. */
  topic(): string {
    const name = this.require('topic')
    try {
      validateTopicName(name)
    } catch (err) {
      throw new UsageError((err as Error).message)
    }
    return name
  }

  /** --group, checked like the library checks group ids. */
  group(): string {
    const id = this.require('group')
    if (id.length === 0 || id.length > 255 || id.includes('\0')) throw new UsageError(`Expected --group to be 1 to 255 characters without NUL, got ${JSON.stringify(id)}`)
    return id
  }
}

export function parseInteger(name: string, v: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = /^-?\d+$/.test(v) ? Number(v) : NaN
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`
    throw new UsageError(`Expected ${name} to be an integer ${range}, got ${JSON.stringify(v)}`)
  }
  return n
}

/**
 * `--config key=value` pairs into validated topic overrides. Keys are TopicConfig's camelCase
 * names; Kafka's dotted names (`retention.ms`) are accepted and camel-cased. Values are
 * integers, JSON objects (`flush={"intervalMs":1000}`) or plain strings (`flush=always`).
 */
export function parseConfigs(pairs: readonly string[]): Partial<TopicConfig> {
  const input: { [key: string]: unknown } = {}
  for (const pair of pairs) {
    const eq = pair.indexOf('=')
    if (eq <= 0) throw new UsageError(`Expected --config to be key=value, got ${JSON.stringify(pair)}`)
    const key = pair.slice(0, eq).replace(/\.([a-z])/g, (_, c: string) => c.toUpperCase())
    const raw = pair.slice(eq + 1)
    let value: unknown = raw
    if (/^-?\d+$/.test(raw)) value = Number(raw)
    else if (raw.startsWith('{')) {
      try {
        value = JSON.parse(raw)
      } catch {
        throw new UsageError(`Expected --config ${key} to be valid JSON, got ${JSON.stringify(raw)}`)
      }
    }
    if (key in input) throw new UsageError(`--config ${key} given twice`)
    input[key] = value
  }
  try {
    return normaliseTopicConfig(input)
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
}

/**
 * Opens the data directory without running retention (a command must not delete data it was
 * not asked to). Refuses a directory that is missing (unless `create`) or that holds other
 * things and no `topics/`, rather than turning it into a strand directory.
 */
export async function openLog(dir: string, create = false): Promise<Log> {
  const st = fs.statSync(dir, { throwIfNoEntry: false })
  if (st === undefined && !create) throw new CliError(`data directory ${dir} does not exist`, "Create a topic first: strand topics --create --dir <path> --topic <name>")
  if (st !== undefined) {
    if (!st.isDirectory()) throw new CliError(`${dir} is not a directory`)
    const entries = fs.readdirSync(dir)
    if (!entries.includes('topics') && (entries.length > 0 || !create)) {
      throw new CliError(`${dir} is not a strand data directory (it has no topics/)`, create ? 'Use an empty or new directory.' : "Create a topic first: strand topics --create --dir <path> --topic <name>")
    }
  }
  const log = await Log.open(dir, { retentionCheckIntervalMs: 0 })
  // Opening recovers: it may have cut damaged batches or rebuilt indexes. Say so, since the
  // command's output alone would not show it.
  for (const name of log.topics()) {
    for (const p of log.topic(name).partitions) {
      for (const e of p.recovery) {
        const detail = e.detail.startsWith(`${e.file}: `) ? e.detail.slice(e.file.length + 2) : e.detail
        process.stderr.write(`strand: recovery of ${name}/${p.id} (${e.kind}): ${e.file}: ${detail}\n`)
      }
    }
  }
  return log
}

/** Runs `fn` on the open log and closes it, whatever happens; a close failure is reported if nothing else was. */
export async function withLog<T>(dir: string, fn: (log: Log) => Promise<T>, create = false): Promise<T> {
  const log = await openLog(dir, create)
  let result: T
  try {
    result = await fn(log)
  } catch (err) {
    await log.close().catch(() => {})
    throw err
  }
  await log.close()
  return result
}
