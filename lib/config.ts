/**
 * Topic configuration: Kafka's per-topic knobs, camel-cased, with Kafka's defaults. Each
 * topic stores only its overrides; the rest come from the Log's defaults and then from here,
 * so changing a default later reaches every topic that never overrode it.
 */
import { invalidArgument } from './errors.js'

/**
 * When appended bytes are fdatasync'ed, and so what an acknowledged append means
 * (docs/durability.md):
 * - `'always'`: the append resolves after its bytes are fdatasync'ed (group commit).
 * - `{ intervalMs, messages }`: a sync runs every `intervalMs` and/or after `messages`
 *   records; the append resolves once its bytes are in the page cache.
 * - `'os'`: never synced by strand; the kernel writes back when it likes.
 */
export type FlushPolicy = 'always' | 'os' | { intervalMs?: number, messages?: number }

export interface TopicConfig {
  /** Roll when the active segment would grow past this (`segment.bytes`). @default 1 GiB */
  segmentBytes: number
  /** Roll when the active segment's first batch is older than this (`segment.ms`). @default 7 days */
  segmentMs: number
  /** Preallocated size of each index file (`segment.index.bytes`). @default 10 MiB */
  segmentIndexBytes: number
  /** Bytes between sparse index entries (`index.interval.bytes`). @default 4096 */
  indexIntervalBytes: number
  /** Delete sealed segments whose newest record is older than this; −1 keeps forever (`retention.ms`). @default 7 days */
  retentionMs: number
  /** Delete the oldest sealed segments while the partition is larger than this; −1 = no limit (`retention.bytes`). @default -1 */
  retentionBytes: number
  /** Largest encoded batch accepted, and largest batch length recovery believes (`max.message.bytes`). @default 1048588 */
  maxMessageBytes: number
  /** @default 'os' */
  flush: FlushPolicy
  /**
   * Replicated topics: the fewest in-sync replicas (the leader counted) an acks='all' append
   * accepts; with fewer it fails with NOT_ENOUGH_REPLICAS and writes nothing
   * (`min.insync.replicas`). @default 1
   */
  minInsyncReplicas: number
}

/** Input form: any subset, plus `retentionHours` (`log.retention.hours`) as the notes' knob. */
export type TopicConfigInput = Partial<TopicConfig> & { retentionHours?: number }

const DAY = 24 * 60 * 60 * 1000

export const TOPIC_DEFAULTS: Readonly<TopicConfig> = Object.freeze({
  segmentBytes: 1024 * 1024 * 1024,
  segmentMs: 7 * DAY,
  segmentIndexBytes: 10 * 1024 * 1024,
  indexIntervalBytes: 4096,
  retentionMs: 7 * DAY,
  retentionBytes: -1,
  maxMessageBytes: 1024 * 1024 + 12,
  flush: 'os' as FlushPolicy,
  minInsyncReplicas: 1,
})

/** The largest partition count a topic may have; each partition costs files and descriptors. */
export const MAX_PARTITIONS = 10_000

const INT32_MAX = 0x7fffffff

function intIn(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw invalidArgument(name, `an integer in [${min}, ${max}]`, v)
  return v
}

function retention(name: string, v: unknown): number {
  if (v === -1) return -1
  return intIn(name, v, 0, Number.MAX_SAFE_INTEGER)
}

/**
 * Validates overrides and returns them normalised (retentionHours folded into retentionMs).
 * Unknown keys are errors, so a typo cannot silently fall back to a default.
 */
export function normaliseTopicConfig(input: unknown, where = 'config'): Partial<TopicConfig> {
  if (input === undefined) return {}
  if (input === null || typeof input !== 'object' || Array.isArray(input)) throw invalidArgument(where, 'an object', input)
  const out: Partial<TopicConfig> = {}
  for (const [key, v] of Object.entries(input)) {
    const name = `${where}.${key}`
    switch (key) {
      case 'segmentBytes': out.segmentBytes = intIn(name, v, 1024, INT32_MAX); break
      case 'segmentMs': out.segmentMs = intIn(name, v, 1, Number.MAX_SAFE_INTEGER); break
      case 'segmentIndexBytes': out.segmentIndexBytes = intIn(name, v, 4096, INT32_MAX); break
      case 'indexIntervalBytes': out.indexIntervalBytes = intIn(name, v, 0, INT32_MAX); break
      case 'retentionMs': out.retentionMs = retention(name, v); break
      case 'retentionHours': {
        if ('retentionMs' in input) throw invalidArgument(name, 'absent when retentionMs is given', v)
        out.retentionMs = v === -1 ? -1 : intIn(name, v, 0, 2 ** 31) * 3_600_000
        break
      }
      case 'retentionBytes': out.retentionBytes = retention(name, v); break
      case 'maxMessageBytes': out.maxMessageBytes = intIn(name, v, 128, 0x3fffffff); break
      case 'flush': out.flush = flushPolicy(name, v); break
      case 'minInsyncReplicas': out.minInsyncReplicas = intIn(name, v, 1, 1000); break
      default: throw invalidArgument(where, `only known keys (${Object.keys(TOPIC_DEFAULTS).join(', ')}, retentionHours)`, key)
    }
  }
  return out
}

function flushPolicy(name: string, v: unknown): FlushPolicy {
  if (v === 'always' || v === 'os') return v
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    const o = v as { intervalMs?: unknown, messages?: unknown }
    const extra = Object.keys(o).filter((k) => k !== 'intervalMs' && k !== 'messages')
    if (extra.length === 0 && (o.intervalMs !== undefined || o.messages !== undefined)) {
      const out: { intervalMs?: number, messages?: number } = {}
      if (o.intervalMs !== undefined) out.intervalMs = intIn(`${name}.intervalMs`, o.intervalMs, 1, INT32_MAX)
      if (o.messages !== undefined) out.messages = intIn(`${name}.messages`, o.messages, 1, Number.MAX_SAFE_INTEGER)
      return out
    }
  }
  throw invalidArgument(name, `'always', 'os' or { intervalMs?, messages? }`, v)
}

/** Resolves a topic's effective config: its overrides over the log's defaults over TOPIC_DEFAULTS. */
export function resolveTopicConfig(...layers: Partial<TopicConfig>[]): TopicConfig {
  return Object.freeze(Object.assign({}, TOPIC_DEFAULTS, ...layers))
}
