/**
 * Helpers shared by the client and group tests: bounded waiting on a condition, typed-error
 * expectations, and a consumer that records what it was given.
 */
import * as assert from 'uvu/assert'
import { Log, StrandError, type Consumer, type ConsumerOptions, type EachMessagePayload } from '../../lib/index.js'
import { bounded } from '../helpers.js'

/** No test waits without a bound; generous, since a loaded 2-core machine is slow, never part of an assertion. */
export const WAIT_MS = 15_000

export const OPEN = { retentionCheckIntervalMs: 0 } as const

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Resolves once `cond()` holds (checked every 5 ms); rejects naming `what` after `ms`. */
export async function until(cond: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
  const started = Date.now()
  while (!cond()) {
    if (Date.now() - started > ms) throw new Error(`${what}: not within ${ms} ms`)
    await sleep(5)
  }
}

/** Like `until`, for a condition that has to await something (a committed offset, say). */
export async function untilAsync(cond: () => Promise<boolean>, what: string, ms = WAIT_MS): Promise<void> {
  const started = Date.now()
  while (!(await cond())) {
    if (Date.now() - started > ms) throw new Error(`${what}: not within ${ms} ms`)
    await sleep(5)
  }
}

/** The shared one (test/helpers.ts), for the client tests that import it from here. */
export { expectCode } from '../helpers.js'

/** Appends `n` single-record batches `${prefix}${i}` to one partition; returns the offsets. */
export async function fill(log: Log, topic: string, partition: number, n: number, prefix = 'v'): Promise<number[]> {
  const p = log.topic(topic).partition(partition)
  const out: number[] = []
  for (let i = 0; i < n; i++) out.push((await p.append([{ value: `${prefix}${i}` }])).baseOffset)
  return out
}

/** One delivery: where it came from, and which consumer got it. */
export interface Delivery { who: string, topic: string, partition: number, offset: number, value: string }

/**
 * A consumer running `eachMessage` that pushes every delivery to `into`, then awaits
 * `hook` (if any) so a test can slow or block a handler. The hook gets the consumer itself:
 * the first delivery may come before `recording` has returned it.
 */
export async function recording(
  log: Log,
  who: string,
  options: ConsumerOptions,
  into: Delivery[],
  setup: (c: Consumer) => Promise<void> | void,
  hook?: (d: Delivery, consumer: Consumer, payload: EachMessagePayload) => Promise<void> | void,
): Promise<Consumer> {
  const c = log.consumer({ clientId: who, ...options })
  await setup(c)
  await bounded(c.run({
    eachMessage: async (payload) => {
      const d = { who, topic: payload.topic, partition: payload.partition, offset: payload.message.offset, value: payload.message.value?.toString() ?? '' }
      into.push(d)
      await hook?.(d, c, payload)
    },
  }), WAIT_MS, `${who} joins`)
  return c
}

/** Offsets delivered for one partition, in delivery order. */
export function offsetsOf(ds: readonly Delivery[], topic: string, partition: number, who?: string): number[] {
  return ds.filter((d) => d.topic === topic && d.partition === partition && (who === undefined || d.who === who)).map((d) => d.offset)
}

/** Asserts that the distinct offsets in `got` are exactly `from..to-1`. */
export function assertCovers(got: readonly number[], from: number, to: number, what: string): void {
  const seen = [...new Set(got)].sort((a, b) => a - b)
  const want = Array.from({ length: to - from }, (_, i) => from + i)
  const missing = want.filter((o) => !seen.includes(o))
  assert.equal(missing, [], `${what}: offsets never delivered`)
  assert.equal(seen, want, `${what}: distinct offsets delivered`)
}

/** Closes every consumer, then the log; the first failure is rethrown after all are tried. */
export async function closeAll(log: Log, ...consumers: Array<Consumer | undefined>): Promise<void> {
  const results = await Promise.allSettled(consumers.filter((c) => c !== undefined).map((c) => bounded(c!.close(), WAIT_MS, 'consumer close')))
  await bounded(log.close(), WAIT_MS, 'log close')
  const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined
  if (failed !== undefined) throw failed.reason
}
