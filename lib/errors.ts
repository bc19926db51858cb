/**
 * strand's one error class. Every failure a caller can act on carries a stable
 * `code`; the message is for humans and names the file and the numbers.
 *
 * Codes are part of the public API: never rename one, only add.
 */
export type ErrorCode =
  /** An argument has the wrong type or is out of range. Nothing was changed. */
  | 'INVALID_ARGUMENT'
  /** A topic name breaks the naming rules (`[a-zA-Z0-9._-]`, 1–249 chars, not `.`/`..`). */
  | 'INVALID_TOPIC'
  /** The topic does not exist. */
  | 'UNKNOWN_TOPIC'
  /** The topic already exists. */
  | 'TOPIC_EXISTS'
  /** The partition number does not exist in the topic. */
  | 'UNKNOWN_PARTITION'
  /** An encoded batch is larger than `maxMessageBytes`. Nothing was written. */
  | 'RECORD_TOO_LARGE'
  /** The offset is below the log start offset or above the log end offset. */
  | 'OFFSET_OUT_OF_RANGE'
  /** The log (or the partition) is closed. */
  | 'LOG_CLOSED'
  /** Another process, or another open Log in this process, holds the directory lock. */
  | 'LOCKED'
  /** Data on disk failed a checksum or structural check that recovery could not repair. */
  | 'CORRUPT'
  /** A write, sync or rename failed; the partition refuses further writes until reopened. */
  | 'IO_ERROR'
  /** The partition hit an earlier I/O error and refuses work until the Log is reopened. */
  | 'PARTITION_FAILED'
  /** An idempotent producer's epoch is older than the partition's: a newer producer took over. Nothing was written. */
  | 'PRODUCER_FENCED'
  /** An idempotent producer's batch does not follow its last one (a gap or a reordering). Nothing was written. */
  | 'OUT_OF_ORDER_SEQUENCE'
  /** The producer's buffer stayed full for longer than `maxBlockMs` (or at once, with 0). The message was not accepted. */
  | 'BUFFER_FULL'
  /** A consumer has no committed offset for a partition and `autoOffsetReset` is 'none'. */
  | 'NO_OFFSET'
  /** The consumer group does not know this member (it left, or was removed after its session timed out). */
  | 'UNKNOWN_MEMBER'
  /** A commit or fetch came from an older generation of the group: a rebalance happened since. */
  | 'REBALANCE_IN_PROGRESS'
  /** The group does not exist (no members and no committed offsets). */
  | 'UNKNOWN_GROUP'
  /** The operation needs a group without members (resetting offsets, deleting the group). */
  | 'GROUP_NOT_EMPTY'
  /** This node does not lead the partition (it follows another node, or the partition has no leader now). Nothing was written. */
  | 'NOT_LEADER'
  /** A request carried an older leader epoch than the partition's: it comes from a deposed leader or a stale follower. */
  | 'FENCED_LEADER_EPOCH'
  /** A request carried a newer leader epoch than this node knows: it has not heard of the election yet. */
  | 'UNKNOWN_LEADER_EPOCH'
  /** An acks='all' append found fewer in-sync replicas than `minInsyncReplicas`. Nothing was written. */
  | 'NOT_ENOUGH_REPLICAS'
  /** The batch was written, but the in-sync replicas shrank below `minInsyncReplicas` before it was committed. */
  | 'NOT_ENOUGH_REPLICAS_AFTER_APPEND'
  /** No answer within the time allowed (a replication wait or a transport request). */
  | 'REQUEST_TIMED_OUT'
  /** The transport cannot reach the node (no address, connection refused or lost, too many requests queued). */
  | 'NODE_UNREACHABLE'
  /** The controller refused a change made from an outdated view of the partition (an older leader or ISR version). */
  | 'STALE_STATE'

export class StrandError extends Error {
  readonly code: ErrorCode

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'StrandError'
    this.code = code
  }
}

/** "Expected `name` to be <what>, got <value>": one wording for every argument error. */
export function invalidArgument(name: string, expected: string, got: unknown): StrandError {
  return new StrandError('INVALID_ARGUMENT', `Expected \`${name}\` to be ${expected}, got ${describe(got)}`)
}

export function describe(value: unknown): string {
  if (value === null) return 'null'
  if (value === undefined) return 'undefined'
  if (typeof value === 'string') return JSON.stringify(value.length > 64 ? value.slice(0, 64) + '…' : value)
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value)
  if (Buffer.isBuffer(value)) return `Buffer(${value.length})`
  if (Array.isArray(value)) return `array(${value.length})`
  return typeof value === 'object' ? (value.constructor?.name ?? 'object') : typeof value
}

export function corrupt(file: string, message: string): StrandError {
  return new StrandError('CORRUPT', `${file}: ${message}`)
}

export function closed(what: string): StrandError {
  return new StrandError('LOG_CLOSED', `${what} is closed`)
}
