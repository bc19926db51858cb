/**
 * Corruption fuzzing (test/fuzz/corruption.ts has the damages and the oracle): random damage to
 * every kind of file strand keeps, after which opening never crashes, hangs or allocates
 * without bound, data before the damage stays readable, and the rest reads back exactly or
 * throws CORRUPT.
 *
 * STRAND_FUZZ_CASES cases (default 2000) with seeds STRAND_FUZZ_SEED, +1, … (default: from the
 * clock, printed); `npm run fuzz -- --case <seed>` replays one. Failing cases are saved under
 * test/fixtures/fuzz/<seed>.json, and every saved case runs here as a named regression test with
 * the exact damage it was saved with.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import path from 'node:path'
import { type CaseResult, FIXTURE_DIR, buildPristine, caseSeeds, pristineDigest, runCases, saveFailures, savedCases, scratchRoot } from './fuzz/corruption.js'

const CASES = Number(process.env.STRAND_FUZZ_CASES ?? 2000)
const SEED = Number(process.env.STRAND_FUZZ_SEED ?? Date.now() % 0x7fffffff)
const saved = savedCases()

let root = ''
let digest = ''
const replayed = new Map<number, CaseResult>()

function explain(r: CaseResult): string {
  return `seed ${r.seed}: ${r.description}\n    ${r.failures.slice(0, 4).join('\n    ')}`
}

test.before(async () => {
  root = fs.mkdtempSync(path.join(scratchRoot(), 'strand-pristine-'))
  await buildPristine(root)
  digest = pristineDigest(root)
  const drifted = saved.filter((s) => s.pristine !== undefined && s.pristine !== digest)
  if (drifted.length > 0) console.log(`fuzz: the pristine log's bytes changed since ${drifted.map((s) => s.seed).join(', ')} were saved (${drifted[0].pristine} -> ${digest}); their byte positions may now hit other fields`)
  if (saved.length > 0) {
    const { results } = await runCases(root, saved.map((s) => ({ seed: s.seed, damage: s.damage })))
    for (const r of results) replayed.set(r.seed, r)
  }
})

test.after(() => {
  if (root !== '') fs.rmSync(root, { recursive: true, force: true })
})

test(`${CASES} random damages: open never crashes or hangs, data before the damage reads back, the rest reads back or throws CORRUPT (seed ${SEED})`, async () => {
  console.log(`fuzz: ${CASES} cases, seeds ${SEED}..${SEED + CASES - 1}; replay with STRAND_FUZZ_SEED=${SEED} or npm run fuzz -- --case <seed>`)
  const { results, rssGrowth } = await runCases(root, caseSeeds(SEED, CASES))
  assert.is(results.length, CASES, 'every case reported')
  const outcomes: { [k: string]: number } = {}
  for (const r of results) outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1
  console.log(`fuzz: ${JSON.stringify(outcomes)}; peak RSS growth of a worker ${(rssGrowth / 2 ** 20).toFixed(0)} MiB`)
  const failed = results.filter((r) => r.outcome === 'failure')
  const written = saveFailures(failed, digest)
  assert.ok(failed.length === 0, `${failed.length} of ${CASES} cases failed (run seed ${SEED})${written.length > 0 ? `; saved ${written.map((f) => path.relative(process.cwd(), f)).join(', ')}` : ''}:\n  ${failed.slice(0, 10).map(explain).join('\n  ')}\n`)
})

for (const s of saved) {
  test(`regression ${s.seed}: ${s.description}`, () => {
    const r = replayed.get(s.seed)
    assert.ok(r !== undefined, `saved case ${s.seed} (${path.join(FIXTURE_DIR, `${s.seed}.json`)}) did not run`)
    assert.ok(r!.outcome !== 'failure', `saved case still fails:\n  ${explain(r!)}\n  when saved: ${s.failures.slice(0, 2).join('; ')}\n`)
  })
}

test.run()
