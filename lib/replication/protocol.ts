/**
 * The replication protocol's messages and the cluster's shared vocabulary. Every message is
 * a transport `Message` (lib/replication/transport.ts): JSON fields plus, for fetches, raw
 * record batches in `records`.
 *
 * Data plane, follower → leader: `fetch`. Control plane, node → controller: `heartbeat`,
 * `alterIsr`, `createTopic`, `shutdown`, `electPreferred` (lib/replication/controller.ts).
 */
import type { TopicConfigInput } from '../config.js'
import type { NodeId } from './transport.js'

/** No leader (offline partition), or no node. */
export const NO_NODE = -1

/** What the controller decided for one partition. Versioned by its two epochs. */
export interface PartitionState {
  topic: string
  partition: number
  /** The replica set in preference order: the first is the preferred leader. */
  replicas: NodeId[]
  /** The leader, or -1 while the partition is offline (no eligible replica alive). */
  leader: NodeId
  /** Bumped at every leader change; stamped on every batch the leader writes. */
  leaderEpoch: number
  /** The in-sync replicas, the leader among them. */
  isr: NodeId[]
  /** Bumped at every change of this state (leader or ISR): orders the controller's answers. */
  partitionEpoch: number
}

/** One replicated topic as the controller knows it. */
export interface TopicState {
  name: string
  partitions: PartitionState[]
  /** Topic config overrides, the same on every replica. */
  config: TopicConfigInput
}

/** A follower's fetch from the leader (Kafka's Fetch with KIP-101/KIP-595 divergence checks). */
export interface FetchRequest {
  type: 'fetch'
  topic: string
  partition: number
  /** The fetching follower. */
  replicaId: NodeId
  /** The leader epoch the follower believes current: older → FENCED_LEADER_EPOCH, newer → UNKNOWN_LEADER_EPOCH. */
  leaderEpoch: number
  /** The follower's log end offset: it has everything below. */
  fetchOffset: number
  /** The epoch of the follower's last batch (-1 when none): the leader checks the follower's log does not diverge. */
  lastFetchedEpoch: number
  maxBytes: number
  /** How long the leader may hold the request when there is nothing new (long poll). */
  maxWaitMs: number
}

export interface FetchResponse {
  type: 'fetch'
  highWatermark: number
  logStartOffset: number
  logEndOffset: number
  /**
   * Set when the follower's log diverges from the leader's: the largest epoch ≤ its
   * `lastFetchedEpoch` that the leader has, and where that epoch ends in the leader's log.
   * The follower truncates and fetches again; `records` is absent.
   */
  divergingEpoch?: { epoch: number, endOffset: number }
  /** Set when `fetchOffset` is outside [logStartOffset, logEndOffset]; `records` is absent. */
  outOfRange?: boolean
  /** Whole batches from `fetchOffset` on (the first may start before it, after a log start move). */
  records?: Buffer
}

/** node → controller: alive, and "tell me when the cluster changes past `knownVersion`". */
export interface HeartbeatRequest {
  nodeId: NodeId
  /**
   * Grows with every start of the node (a timestamp-based number): a larger one tells the
   * controller the node restarted, a smaller one is a delayed message from a dead process.
   */
  incarnation: number
  /** The cluster version the node has applied; -1 for none. */
  knownVersion: number
  /** How long the controller may hold the request while nothing changes. */
  maxWaitMs: number
}

export interface ClusterView {
  version: number
  topics: TopicState[]
}

/** A leader asks to change its partition's ISR (Kafka's AlterPartition). */
export interface AlterIsrRequest {
  nodeId: NodeId
  incarnation: number
  topic: string
  partition: number
  leaderEpoch: number
  partitionEpoch: number
  isr: NodeId[]
}

export interface CreateTopicRequest {
  name: string
  partitions: number
  replicationFactor: number
  /** Explicit replica sets, one per partition (first = preferred leader); assigned round-robin over live nodes otherwise. */
  assignment?: NodeId[][]
  config?: TopicConfigInput
}
