/**
 * The crash campaign of issue 6 at CI size: STRAND_TORTURE_ITERATIONS (default 200) SIGKILLs
 * of child appenders under every flush policy, at random moments and at chosen fault sites
 * (rolls, retention deletes, checkpoint writes, fsyncs, recovery cuts, index rebuilds,
 * commits to __consumer_offsets, producer-state snapshots), with a consumer group committing
 * offsets and idempotent producers in some iterations; see torture/campaign.ts for what is
 * checked after each. STRAND_TEST_SEED replays a run's choices; `npm run torture --
 * --iterations N` runs a longer one.
 *
 * Asserts for every policy, not only 'always', that no acknowledged record and no resolved
 * commit is lost: SIGKILL leaves the page cache, so a process crash loses nothing
 * acknowledged under any policy (docs/durability.md). Only power loss separates the
 * policies, and no test here cuts power.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { formatSummary, runCampaign } from './torture/campaign.js'

const ITERATIONS = Number(process.env.STRAND_TORTURE_ITERATIONS ?? 200)
const SEED = process.env.STRAND_TEST_SEED === undefined ? undefined : Number(process.env.STRAND_TEST_SEED)

test(`${ITERATIONS} SIGKILLs at random moments and fault sites lose, corrupt and invent no record and no committed offset under any flush policy`, async () => {
  const result = await runCampaign({ iterations: ITERATIONS, seed: SEED, concurrency: 2 })
  console.log(formatSummary(result))
  assert.is(result.iterations, ITERATIONS)
  assert.is(result.recordsLost, 0, 'acknowledged records lost')
  assert.is(result.commitsLost, 0, 'resolved commits lost')
  assert.equal(result.failures, [], 'failures')
  assert.is(result.kills, ITERATIONS, 'every child was SIGKILLed')
})

test.run()
