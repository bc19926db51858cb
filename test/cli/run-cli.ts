/**
 * Runs the `strand` command line as a user would: the compiled `lib/cli/main.js` under node,
 * which is what package.json's `bin` points at. Each test file builds once, into its own
 * directory under node_modules/.cache (so node_modules resolves, and the shared dist/ is left
 * alone), and removes it afterwards.
 */
import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { REPO_ROOT, bounded } from '../helpers.js'

/** Upper bound on any one command: a hung command fails its test instead of the run. */
export const COMMAND_MS = 30_000

export interface Result { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

export interface Cli {
  /** Runs `strand <args>` with `input` on stdin (closed at once when absent). */
  run(args: readonly string[], options?: { input?: string, env?: NodeJS.ProcessEnv }): Promise<Result>
  /** Starts `strand <args>` with stdin left open, for tests that signal it. */
  start(args: readonly string[]): { proc: ReturnType<typeof spawn>, result: Promise<Result> }
  main: string
  cleanup(): void
}

/** Compiles lib/ with tsconfig.build.json into a private directory; throws if main.js is not produced. */
export function buildCli(): Cli {
  const out = path.join(REPO_ROOT, 'node_modules', '.cache', `strand-cli-test-${process.pid}`)
  fs.rmSync(out, { recursive: true, force: true })
  const tsc = spawnSync(process.execPath, [path.join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', out], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000 })
  const main = path.join(out, 'lib', 'cli', 'main.js')
  if (!fs.existsSync(main)) throw new Error(`build produced no ${main}: ${tsc.stdout}${tsc.stderr}`)
  const env = { ...process.env }
  delete env.STRAND_DIR
  const start = (args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}) => {
    const proc = spawn(process.execPath, [main, ...args], { cwd: REPO_ROOT, env: { ...env, ...extraEnv }, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    proc.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
    proc.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    proc.stdin.on('error', () => {})
    const closed = new Promise<Result>((resolve) => proc.once('close', (code, signal) => resolve({ code, signal, stdout, stderr })))
    let exited = 'no exit event'
    proc.once('exit', (code, signal) => { exited = `exit event: code ${code} signal ${signal}` })
    const result = bounded(closed, COMMAND_MS, `strand ${args.join(' ')}`).catch((err) => {
      proc.kill('SIGKILL')
      throw new Error(`${(err as Error).message}; ${exited}; stdout ${JSON.stringify(stdout)}; stderr ${JSON.stringify(stderr)}`)
    })
    return { proc, result }
  }
  return {
    main,
    run(args, options = {}) {
      const { proc, result } = start(args, options.env)
      proc.stdin!.end(options.input ?? '')
      return result
    },
    start: (args) => start(args),
    cleanup: () => fs.rmSync(out, { recursive: true, force: true }),
  }
}

/** Every file and directory under `dir` with a hash of each file's bytes, sorted; `skip` names files whose bytes may change. */
export function snapshot(dir: string, skip: readonly string[] = []): string[] {
  const out: string[] = []
  const walk = (rel: string): void => {
    for (const name of fs.readdirSync(path.join(dir, rel)).sort()) {
      const r = rel === '' ? name : `${rel}/${name}`
      const full = path.join(dir, r)
      if (fs.statSync(full).isDirectory()) {
        out.push(`${r}/`)
        walk(r)
      } else {
        out.push(skip.includes(name) ? r : `${r} ${createHash('sha1').update(fs.readFileSync(full)).digest('hex')}`)
      }
    }
  }
  if (fs.existsSync(dir)) walk('')
  return out
}

/** The rows of a table printed by the CLI, split on runs of spaces, header first. */
export function rows(text: string): string[][] {
  return text.trim().split('\n').map((l) => l.trim().split(/\s{2,}/))
}
