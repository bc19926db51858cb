// Runs every test/**/*.test.ts in its own Node process (uvu suites, TypeScript through tsx),
// prints each file's result and ends with the line CI reads: `N passed, N failed`.
// A file that exits non-zero without a uvu summary (a crash, a hang killed by the timeout)
// counts as one failure. Usage: node test/run.mjs [filter…]
import { spawn } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const FILE_TIMEOUT_MS = Number(process.env.STRAND_TEST_TIMEOUT_MS ?? 10 * 60 * 1000)
const filters = process.argv.slice(2)

function find(dir) {
  const out = []
  for (const name of readdirSync(dir).sort()) {
    const full = join(dir, name)
    if (name === 'fixtures' || name === 'node_modules') continue
    if (statSync(full).isDirectory()) out.push(...find(full))
    else if (name.endsWith('.test.ts')) out.push(full)
  }
  return out
}

function runFile(file) {
  return new Promise((resolve) => {
    const started = Date.now()
    const child = spawn(process.execPath, ['--import', 'tsx', file], {
      cwd: root,
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    child.stdout.on('data', (d) => { output += d })
    child.stderr.on('data', (d) => { output += d })
    const timer = setTimeout(() => { output += `\n[runner] killed after ${FILE_TIMEOUT_MS} ms\n`; child.kill('SIGKILL') }, FILE_TIMEOUT_MS)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const num = (label) => Number(/* uvu's summary */ new RegExp(`${label}:\\s+(\\d+)`).exec(output)?.[1] ?? NaN)
      let total = num('Total'), passed = num('Passed'), skipped = num('Skipped')
      if (Number.isNaN(total)) { total = 1; passed = 0; skipped = 0 }
      // uvu's Total already leaves skipped tests out.
      let failed = total - passed
      if ((code !== 0 || signal !== null) && failed === 0) failed = 1
      resolve({ file, passed, failed, skipped: skipped || 0, ms: Date.now() - started, output, code, signal })
    })
  })
}

const files = find(join(root, 'test')).filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
let passed = 0, failed = 0, skipped = 0
for (const file of files) {
  const r = await runFile(file)
  passed += r.passed; failed += r.failed; skipped += r.skipped
  const name = relative(root, file)
  console.log(`${r.failed > 0 ? 'FAIL' : 'ok  '} ${name}  ${r.passed} passed${r.failed ? `, ${r.failed} failed` : ''}  (${(r.ms / 1000).toFixed(1)} s)`)
  if (r.failed > 0 || process.env.STRAND_TEST_VERBOSE) console.log(r.output.replace(/^/gm, '    '))
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`)
process.exit(failed > 0 || files.length === 0 ? 1 : 0)
