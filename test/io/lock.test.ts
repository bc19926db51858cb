import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { DirectoryLock, LOCK_FILE } from '../../lib/io/lock.js'
import { StrandError } from '../../lib/errors.js'

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const HOLD_LOCK = fileURLToPath(new URL('./fixtures/hold-lock.ts', import.meta.url))
/** Upper bound on any wait for a child, so a broken test fails instead of hanging. */
const WAIT_MS = 10_000

async function withTempDir(fn: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-lock-'))
  try {
    await fn(dir)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

interface Child {
  proc: ChildProcess
  stdout: () => string
}

function spawnHolder(dir: string): Child {
  // cwd is the repo root so `--import tsx` resolves from this package's node_modules.
  const proc = spawn(process.execPath, ['--import', 'tsx', HOLD_LOCK, dir], {
    cwd: REPO_ROOT,
    stdio: ['pipe', 'pipe', 'pipe']
  })
  let out = ''
  let err = ''
  proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => { out += chunk })
  proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => { err += chunk })
  return { proc, stdout: () => out + (err === '' ? '' : `\n[stderr] ${err}`) }
}

function exited(proc: ChildProcess): boolean {
  return proc.exitCode !== null || proc.signalCode !== null
}

function waitForExit(proc: ChildProcess, ms = WAIT_MS): Promise<{ code: number | null, signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    if (exited(proc)) return resolve({ code: proc.exitCode, signal: proc.signalCode })
    const timer = setTimeout(() => reject(new Error(`child ${proc.pid} did not exit within ${ms} ms`)), ms)
    proc.once('exit', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal })
    })
  })
}

/** Resolves once the child's stdout contains `line`; rejects if it exits first or the wait times out. */
function waitForLine(child: Child, line: string, ms = WAIT_MS): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      clearTimeout(timer)
      child.proc.stdout!.off('data', onData)
      child.proc.off('exit', onExit)
      if (err) reject(err)
      else resolve()
    }
    const onData = () => {
      if (child.stdout().split('\n').includes(line)) done()
    }
    const onExit = (code: number | null, signal: string | null) =>
      done(new Error(`child exited (code ${code}, signal ${signal}) before printing ${line}; output: ${child.stdout()}`))
    const timer = setTimeout(() => done(new Error(`child did not print ${line} within ${ms} ms; output: ${child.stdout()}`)), ms)
    child.proc.stdout!.on('data', onData)
    child.proc.once('exit', onExit)
    onData()
  })
}

async function kill(child: Child): Promise<void> {
  if (exited(child.proc)) return
  child.proc.kill('SIGKILL')
  await waitForExit(child.proc)
}

function acquireError(dir: string): StrandError {
  try {
    DirectoryLock.acquire(dir).release()
  } catch (err) {
    assert.instance(err, StrandError)
    return err as StrandError
  }
  assert.unreachable('expected acquire to throw')
  throw new Error('unreachable')
}

test('second acquire in the same process fails with LOCKED and names the lock file and pid', () =>
  withTempDir((dir) => {
    const lock = DirectoryLock.acquire(dir)
    try {
      const err = acquireError(dir)
      assert.is(err.code, 'LOCKED')
      assert.ok(err.message.includes(path.join(dir, LOCK_FILE)), err.message)
      assert.ok(err.message.includes(`pid ${process.pid}`), err.message)
    } finally {
      lock.release()
    }
  }))

test('acquire succeeds again after release', () =>
  withTempDir((dir) => {
    DirectoryLock.acquire(dir).release()
    const lock = DirectoryLock.acquire(dir)
    lock.release()
  }))

test('release is idempotent and leaves the lock file in place', () =>
  withTempDir((dir) => {
    const lock = DirectoryLock.acquire(dir)
    assert.is(lock.path, path.join(dir, LOCK_FILE))
    assert.is(fs.readFileSync(lock.path, 'utf8'), `${process.pid}\n`)
    lock.release()
    lock.release()
    assert.ok(fs.existsSync(lock.path))
  }))

test('acquire overwrites a stale pid left in the lock file', () =>
  withTempDir((dir) => {
    fs.writeFileSync(path.join(dir, LOCK_FILE), '99999999999 and some junk\n')
    const lock = DirectoryLock.acquire(dir)
    try {
      assert.is(fs.readFileSync(lock.path, 'utf8'), `${process.pid}\n`)
    } finally {
      lock.release()
    }
  }))

test('acquire on a missing directory fails with IO_ERROR carrying the cause', () =>
  withTempDir((dir) => {
    const err = acquireError(path.join(dir, 'missing'))
    assert.is(err.code, 'IO_ERROR')
    assert.ok(err.message.includes(path.join(dir, 'missing', LOCK_FILE)), err.message)
    assert.is((err.cause as NodeJS.ErrnoException).code, 'ENOENT')
  }))

test('acquire fails with LOCKED naming the child pid while a child process holds the lock', () =>
  withTempDir(async (dir) => {
    const child = spawnHolder(dir)
    try {
      await waitForLine(child, 'locked')
      const err = acquireError(dir)
      assert.is(err.code, 'LOCKED')
      assert.ok(err.message.includes(path.join(dir, LOCK_FILE)), err.message)
      assert.ok(err.message.includes(`pid ${child.proc.pid}`), err.message)
    } finally {
      await kill(child)
    }
  }))

test('kernel releases the lock when the holding child is SIGKILLed', () =>
  withTempDir(async (dir) => {
    const child = spawnHolder(dir)
    try {
      await waitForLine(child, 'locked')
      assert.is(acquireError(dir).code, 'LOCKED')
      child.proc.kill('SIGKILL')
      const { signal } = await waitForExit(child.proc)
      assert.is(signal, 'SIGKILL')
      // The dead child's pid is still in the file; it is informational and must not block us.
      assert.is(fs.readFileSync(path.join(dir, LOCK_FILE), 'utf8'), `${child.proc.pid}\n`)
      const lock = DirectoryLock.acquire(dir)
      lock.release()
    } finally {
      await kill(child)
    }
  }))

test('child process cannot acquire while the parent holds the lock and reports LOCKED', () =>
  withTempDir(async (dir) => {
    const lock = DirectoryLock.acquire(dir)
    const child = spawnHolder(dir)
    try {
      const { code } = await waitForExit(child.proc)
      assert.is(code, 1, child.stdout())
      assert.ok(child.stdout().split('\n').includes('LOCKED'), child.stdout())
      assert.ok(child.stdout().includes(`pid ${process.pid}`), child.stdout())
    } finally {
      await kill(child)
      lock.release()
    }
  }))

test('child holding the lock exits when its stdin closes, releasing the lock', () =>
  withTempDir(async (dir) => {
    const child = spawnHolder(dir)
    try {
      await waitForLine(child, 'locked')
      child.proc.stdin!.end()
      const { code } = await waitForExit(child.proc)
      assert.is(code, 0)
      DirectoryLock.acquire(dir).release()
    } finally {
      await kill(child)
    }
  }))

test.run()
