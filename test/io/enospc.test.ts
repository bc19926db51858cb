/**
 * A real full disk: a small tmpfs mounted for the test (root, and a kernel that permits it).
 * Where mounting is not possible each test prints "skipped: could not mount tmpfs (<why>)"
 * and passes without asserting anything.
 *
 * Each scenario runs in a child process (this file, run with `--scenario <name> <mount>`),
 * while the parent mounts, waits (bounded) and unmounts in `finally`: a store into a sparse
 * mapping on a full disk is a SIGBUS, and a test process killed by a signal must not leave
 * a mount behind.
 *
 * What is checked (docs/durability.md, "Failed writes"): the append that meets ENOSPC rejects
 * with IO_ERROR naming ENOSPC and the file; LEO does not move; every acknowledged record reads
 * back; once space is freed the next append lands at the old LEO (or, where the failure hit
 * a sync or checkpoint, the partition refuses writes with PARTITION_FAILED until reopened);
 * and a reopen, clean or after a crash-like stop, on a full disk or not, finds every
 * acknowledged record with gap-free offsets and takes appends.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Log, type Partition, StrandError, type TopicConfigInput } from '../../lib/index.js'
import { tempDir } from '../helpers.js'

const SELF = fileURLToPath(import.meta.url)
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const OPEN = { retentionCheckIntervalMs: 0 } as const
/** Upper bound for one scenario; a hang fails the test rather than the run. */
const CHILD_TIMEOUT_MS = 120_000
/** Upper bound on appends while filling, far above what a few MiB can hold. */
const MAX_FILL = 100_000

// --- the scenarios (child side) -------------------------------------------------------------

/** What was appended to t/0: offset → value for every write that landed, and the acknowledged offsets. */
class Tracker {
  log: Log
  readonly written = new Map<number, string>()
  readonly acked = new Set<number>()
  lastCall = { before: -1, after: -1 }
  #seq = 0

  constructor(log: Log) { this.log = log }

  get p(): Partition { return this.log.topic('t').partition(0) }

  append(bytes: number): Promise<number> {
    const p = this.p
    const value = `r${this.#seq++}:`.padEnd(bytes, String.fromCharCode(97 + (this.#seq % 26)))
    const before = p.logEndOffset
    const promise = p.append([{ value }])
    this.lastCall = { before, after: p.logEndOffset }
    if (p.logEndOffset === before + 1) this.written.set(before, value)
    return promise.then((r) => {
      assert.is(r.baseOffset, before)
      this.acked.add(r.baseOffset)
      return r.baseOffset
    })
  }

  /** Appends until one fails; returns its error. */
  async fill(bytes: number): Promise<unknown> {
    for (let i = 0; i < MAX_FILL; i++) {
      try {
        await this.append(bytes)
      } catch (err) {
        return err
      }
    }
    throw new Error(`${MAX_FILL} appends of ${bytes} bytes and the disk is not full`)
  }

  /** Offsets gap-free from the log start, each what was written there; every acknowledged one present. */
  verify(what: string, exact = false): void {
    const p = this.p
    let offset = p.logStartOffset
    let expected = offset
    while (offset < p.logEndOffset) {
      const r = p.read(offset)
      const records = r.records()
      assert.ok(records.length > 0, `${what}: nothing read at ${offset} < LEO ${p.logEndOffset}`)
      for (const rec of records) {
        assert.is(rec.offset, expected, `${what}: offsets gap-free`)
        assert.is(rec.value?.toString(), this.written.get(rec.offset), `${what}: offset ${rec.offset} reads back what was written`)
        if (exact) assert.ok(this.acked.has(rec.offset), `${what}: offset ${rec.offset} is visible but was never acknowledged`)
        expected++
      }
      offset = r.nextOffset
    }
    assert.is(expected, p.logEndOffset, `${what}: reads end at LEO`)
    for (const o of this.acked) if (o >= p.logStartOffset) assert.ok(o < p.logEndOffset, `${what}: acknowledged offset ${o} missing (LEO ${p.logEndOffset})`)
  }
}

/** The failure of a full disk: a StrandError naming ENOSPC and a file of partition t/0. */
function assertEnospc(err: unknown, logDir: string, codes: string[], what: string): StrandError {
  assert.instance(err, StrandError, `${what}: not a StrandError: ${(err as Error)?.stack ?? String(err)}`)
  const e = err as StrandError
  assert.ok(codes.includes(e.code), `${what}: code ${e.code}, expected ${codes.join(' or ')}: ${e.message}`)
  assert.ok(e.message.includes('ENOSPC'), `${what}: message does not name ENOSPC: ${e.message}`)
  assert.ok(e.message.includes(path.join(logDir, 'topics', 't', '0') + path.sep), `${what}: message does not name a file of t/0: ${e.message}`)
  return e
}

/** Fills the file system with `file` until ENOSPC; returns the bytes it took. */
function fillWithJunk(file: string): number {
  const fd = fs.openSync(file, 'w')
  const chunk = Buffer.alloc(64 * 1024, 0x6a)
  let total = 0
  try {
    for (let size = chunk.length; size >= 512; size >>= 1) {
      for (;;) {
        try {
          total += fs.writeSync(fd, chunk, 0, size, total)
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err
          break
        }
      }
    }
  } finally {
    fs.closeSync(fd)
  }
  return total
}

async function openLog(dir: string, config?: TopicConfigInput): Promise<Tracker> {
  const log = await Log.open(dir, OPEN)
  if (config !== undefined) await log.createTopic('t', { config })
  return new Tracker(log)
}

/** Close; then reopen and check everything is there and the log appends. Returns the reopened tracker. */
async function closeAndReopen(t: Tracker, dir: string, crash: boolean, what: string): Promise<{ closedCleanly: boolean }> {
  let closedCleanly = true
  try {
    await t.log.close()
  } catch (err) {
    closedCleanly = false
    assertEnospc(err, dir, ['IO_ERROR', 'PARTITION_FAILED'], `${what}: close`)
  }
  const marker = path.join(dir, 'clean-shutdown')
  assert.is(fs.existsSync(marker), closedCleanly, `${what}: clean-shutdown exactly when close succeeded`)
  if (crash) fs.rmSync(marker, { force: true })
  t.log = await Log.open(dir, OPEN)
  assert.is(t.log.openedCleanly, closedCleanly && !crash, `${what}: opened cleanly only after a clean close`)
  t.verify(`${what}: after reopen`)
  return { closedCleanly }
}

const scenarios: { [name: string]: (mnt: string) => Promise<void> } = {
  /** Fill one segment with flush 'always'; free space; reopen clean, then crash-like on a full disk. */
  async fill(mnt) {
    const dir = path.join(mnt, 'log')
    const junk = path.join(mnt, 'junk')
    fs.writeFileSync(junk, Buffer.alloc(256 * 1024, 0x6a))
    const t = await openLog(dir, { flush: 'always' })
    const err = await t.fill(1000)
    const e = assertEnospc(err, dir, ['IO_ERROR'], 'the append that meets a full disk')
    console.log(`full after ${t.acked.size} acknowledged appends: ${e.message}`)
    assert.is(t.p.logEndOffset, t.lastCall.before, 'a failed append leaves LEO where it was')
    t.verify('on the full disk', true)
    // Still full: still a plain IO_ERROR, since the cut-back worked the partition is not failed.
    assertEnospc(await t.fill(1000), dir, ['IO_ERROR'], 'a second append on the full disk')
    assert.is(t.p.logEndOffset, t.lastCall.before)

    fs.rmSync(junk)
    const leo = t.p.logEndOffset
    assert.is(await t.append(1000), leo, 'once space returns the next append lands at the old LEO')
    for (let i = 0; i < 10; i++) await t.append(1000)
    t.verify('after freeing space', true)

    const clean = await closeAndReopen(t, dir, false, 'clean reopen')
    assert.ok(clean.closedCleanly, 'close with space free succeeds')
    assert.is(await t.append(1000), t.p.logEndOffset - 1)

    // Full again, then a crash-like stop (no clean-shutdown) and recovery on the full disk.
    const junk2 = path.join(mnt, 'junk2')
    fs.writeFileSync(junk2, Buffer.alloc(128 * 1024, 0x6a))
    assertEnospc(await t.fill(700), dir, ['IO_ERROR'], 'filling again')
    t.verify('full again', true)
    await closeAndReopen(t, dir, true, 'crash-like reopen on a full disk')
    console.log(`recovery on the full disk: ${JSON.stringify(t.p.recovery.map((r) => r.kind))}`)
    assertEnospc(await t.fill(700), dir, ['IO_ERROR'], 'append after recovery on a full disk')
    fs.rmSync(junk2)
    assert.is(await t.append(700), t.p.logEndOffset - 1, 'appends after recovery once space returns')
    await closeAndReopen(t, dir, false, 'final reopen')
    await t.append(100)
    t.verify('final')
    await t.log.close()
  },

  /** Small segments: the disk fills across rolls, so ENOSPC may meet a log write, an index entry or a roll's checkpoint. */
  async roll(mnt) {
    for (const bytes of [700, 1900, 3900]) {
      const dir = path.join(mnt, `log-${bytes}`)
      const junk = path.join(mnt, 'junk')
      fs.writeFileSync(junk, Buffer.alloc(128 * 1024, 0x6a))
      const t = await openLog(dir, { flush: 'always', segmentBytes: 16 * 1024, segmentIndexBytes: 4096 })
      const err = await t.fill(bytes)
      const e = assertEnospc(err, dir, ['IO_ERROR', 'PARTITION_FAILED'], `${bytes}-byte appends across rolls`)
      console.log(`${bytes}-byte records: full after ${t.acked.size} appends, ${t.p.segmentCount} segments: ${e.code} ${e.message}`)
      if (e.code === 'IO_ERROR' && /write .*\.(log|index|timeindex) failed/.test(e.message)) {
        assert.is(t.p.logEndOffset, t.lastCall.before, 'a failed write leaves LEO where it was')
      }
      t.verify('on the full disk')
      fs.rmSync(junk)
      const leo = t.p.logEndOffset
      let refused: unknown = null
      try {
        assert.is(await t.append(bytes), leo, 'once space returns the next append lands at LEO')
      } catch (err2) {
        refused = err2
      }
      if (refused !== null) {
        // Only a failed sync or checkpoint may leave the partition refusing writes until reopened.
        const r = assertEnospc(refused, dir, ['PARTITION_FAILED'], 'append after freeing space')
        assert.ok(/checkpoint|fdatasync|fsync/.test(r.message), `refused after a plain write failure: ${r.message}`)
      }
      await closeAndReopen(t, dir, false, `${bytes}-byte records`)
      assert.is(await t.append(bytes), t.p.logEndOffset - 1, 'appends after reopen')
      await t.log.close()
      fs.rmSync(dir, { recursive: true })
    }
  },

  /** Out of inodes: a roll cannot create its segment files. */
  async inodes(mnt) {
    const dir = path.join(mnt, 'log')
    const spare = Array.from({ length: 6 }, (_, i) => path.join(mnt, `spare-${i}`))
    for (const f of spare) fs.writeFileSync(f, '')
    const t = await openLog(dir, { flush: 'always', segmentBytes: 4096, segmentIndexBytes: 4096 })
    const err = await t.fill(500)
    const e = assertEnospc(err, dir, ['IO_ERROR', 'PARTITION_FAILED'], 'a roll out of inodes')
    console.log(`out of inodes after ${t.acked.size} appends, ${t.p.segmentCount} segments: ${e.code} ${e.message}`)
    if (e.code === 'IO_ERROR') assert.is(t.p.logEndOffset, t.lastCall.before, 'a failed roll leaves LEO where it was')
    t.verify('out of inodes')
    for (const f of spare) fs.rmSync(f)
    const leo = t.p.logEndOffset
    try {
      // A few appends only: six inodes are two rolls' worth.
      assert.is(await t.append(500), leo, 'with inodes back the next append lands at LEO')
      for (let i = 0; i < 3; i++) await t.append(500)
    } catch (err2) {
      // A roll's checkpoint that found no inode fails the partition until reopened.
      const r = assertEnospc(err2, dir, ['PARTITION_FAILED'], 'append with inodes back')
      assert.ok(r.message.includes('checkpoint'), `refused after a plain create failure: ${r.message}`)
    }
    await closeAndReopen(t, dir, false, 'after running out of inodes')
    assert.is(await t.append(500), t.p.logEndOffset - 1)
    await t.log.close()
  },

  /**
   * The first batch of a new segment when a single page is free: its log write or its index
   * entries (pwrite into a sparse, preallocated index) run out of space. A store through a
   * mapping would be a SIGBUS here; the append must reject instead.
   */
  async 'index-page'(mnt) {
    const dir = path.join(mnt, 'log')
    const t = await openLog(dir, { flush: 'always', segmentBytes: 8192, segmentIndexBytes: 4096 })
    await t.append(6000)
    const junk = path.join(mnt, 'junk')
    const filled = fillWithJunk(junk)
    fs.truncateSync(junk, Math.max(0, Math.floor(filled / 4096) * 4096 - 4096))
    const leo = t.p.logEndOffset
    let err: unknown = null
    try {
      await t.append(3000)
    } catch (e) {
      err = e
    }
    if (err !== null) {
      const e = assertEnospc(err, dir, ['IO_ERROR', 'PARTITION_FAILED'], 'the first batch of a new segment with one page free')
      console.log(`one page free: ${e.message}`)
      if (e.code === 'IO_ERROR' && !e.message.includes('checkpoint')) assert.is(t.p.logEndOffset, leo)
    }
    t.verify('one page free')
    fs.rmSync(junk)
    await closeAndReopen(t, dir, false, 'after the index page')
    assert.is(await t.append(3000), t.p.logEndOffset - 1)
    await t.log.close()
  },

  /** The disk is full when a checkpoint is written: by deleteRecordsBefore, then by close. */
  async checkpoint(mnt) {
    const dir = path.join(mnt, 'log')
    const t = await openLog(dir, { flush: 'always', segmentBytes: 4096, segmentIndexBytes: 4096 })
    for (let i = 0; i < 40; i++) await t.append(300)
    const junk = path.join(mnt, 'junk')
    fillWithJunk(junk)
    const cut = t.p.segmentBaseOffsets()[2]
    let err: unknown = null
    try {
      await t.p.deleteRecordsBefore(cut)
    } catch (e) {
      err = e
    }
    assert.ok(err !== null, 'deleteRecordsBefore cannot make its new start durable on a full disk')
    const e = assertEnospc(err, dir, ['IO_ERROR', 'PARTITION_FAILED'], 'deleteRecordsBefore on a full disk')
    assert.ok(e.message.includes('checkpoint'), `names the checkpoint: ${e.message}`)
    console.log(`deleteRecordsBefore on a full disk: ${e.message}`)
    t.verify('after the failed checkpoint')
    fs.rmSync(junk)
    await closeAndReopen(t, dir, false, 'after a failed checkpoint')
    const start = t.p.logStartOffset
    assert.ok(start === 0 || start === cut, `log start is the old or the new one, got ${start}`)
    for (let i = 0; i < 10; i++) await t.append(300)

    // Close on a full disk: the checkpoint cannot be written, so no clean-shutdown.
    fillWithJunk(junk)
    let closeErr: unknown = null
    try {
      await t.log.close()
    } catch (e2) {
      closeErr = e2
    }
    // Space can come back behind the junk's back: index files of deleted segments stay mapped
    // until the garbage collector unmaps them, and tmpfs frees their pages only then. So close
    // may fail (then: IO_ERROR and no clean-shutdown) or succeed (then: a clean marker).
    if (closeErr !== null) {
      assertEnospc(closeErr, dir, ['IO_ERROR', 'PARTITION_FAILED'], 'close on a full disk')
      assert.not.ok(fs.existsSync(path.join(dir, 'clean-shutdown')), 'no clean-shutdown after a failed close')
    } else {
      console.log('close on a full disk found room for its checkpoint (pages freed by unmapped indexes)')
      assert.ok(fs.existsSync(path.join(dir, 'clean-shutdown')), 'a close that succeeded leaves clean-shutdown')
    }
    // Reopen while still full: recovery must not need space.
    t.log = await Log.open(dir, OPEN)
    assert.is(t.log.openedCleanly, closeErr === null)
    t.verify('recovered on a full disk')
    fs.rmSync(junk)
    assert.is(await t.append(300), t.p.logEndOffset - 1)
    await closeAndReopen(t, dir, false, 'final')
    t.verify('final')
    await t.log.close()
  },
}

// --- mounting and the tests (parent side) ---------------------------------------------------

/** Mounts a tmpfs with `options` on `dir`; returns why it could not, or null. */
function tryMount(dir: string, options: string): string | null {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`
  if (process.getuid?.() !== 0) return 'not root'
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { stdio: 'pipe' })
    return null
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim()
    return stderr || (err as Error).message
  }
}

function unmount(dir: string): void {
  try {
    execFileSync('umount', [dir], { stdio: 'pipe' })
  } catch {
    execFileSync('umount', ['-l', dir], { stdio: 'pipe' })
  }
}

function runScenario(name: string, mnt: string): Promise<{ code: number | null, signal: NodeJS.Signals | null, output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', SELF, '--scenario', name, mnt], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => { output += d })
    child.stderr.setEncoding('utf8').on('data', (d: string) => { output += d })
    const timer = setTimeout(() => { output += `\n[killed after ${CHILD_TIMEOUT_MS} ms]`; child.kill('SIGKILL') }, CHILD_TIMEOUT_MS)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, output })
    })
  })
}

function onTmpfs(name: string, options: string, description: string): void {
  test(description, async () => {
    const { dir, cleanup } = tempDir('strand-enospc-')
    const why = tryMount(dir, options)
    if (why !== null) {
      console.log(`skipped: could not mount tmpfs (${why})`)
      cleanup()
      return
    }
    try {
      const r = await runScenario(name, dir)
      const lines = r.output.trim().split('\n').filter((l) => l !== '' && !l.startsWith('npm warn'))
      for (const l of lines) console.log(`    [${name}] ${l}`)
      assert.ok(r.code === 0 && r.signal === null, `scenario ${name} exited with ${r.signal ?? `code ${r.code}`}${r.signal === 'SIGBUS' ? ' (SIGBUS: a store into a mapping on the full disk)' : ''}:\n${r.output}`)
    } finally {
      unmount(dir)
      cleanup()
    }
  })
}

if (process.argv[2] === '--scenario') {
  const [name, mnt] = process.argv.slice(3)
  try {
    await scenarios[name](mnt)
    console.log('scenario ok')
  } catch (err) {
    console.log(`scenario ${name} failed: ${(err as Error)?.stack ?? String(err)}`)
    process.exitCode = 1
  }
} else {
  onTmpfs('fill', 'size=2m', 'a full disk rejects the append with IO_ERROR (ENOSPC, the file), moves nothing, and the log appends again once space returns; clean and crash-like reopens on a full disk keep every acknowledged record')
  onTmpfs('roll', 'size=2m', 'filling across rolls (small segments): ENOSPC at a log write, index entry or roll checkpoint leaves the log consistent, appendable or refusing until reopened')
  onTmpfs('inodes', 'size=4m,nr_inodes=32', 'out of inodes, a roll cannot create its files: the append rejects and the log appends again once inodes return')
  onTmpfs('index-page', 'size=1m', 'the first batch of a new segment with a single page free rejects (or fits) instead of killing the process with SIGBUS')
  onTmpfs('checkpoint', 'size=2m', 'a checkpoint written on a full disk (deleteRecordsBefore, close) fails with IO_ERROR; no clean-shutdown; recovery on the full disk keeps every acknowledged record')
  test.run()
}
