/**
 * docs/producer.md, "Backpressure": bufferMemory bounds what a producer holds unwritten;
 * maxBlockMs says whether a send that does not fit waits for room or fails with BUFFER_FULL.
 *
 *   npx tsx docs/examples/producer-backpressure.ts
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Log, StrandError } from '../../lib/index.js'

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-producer-'))
const log = await Log.open(dir)
try {
  await log.createTopic('uploads')
  const chunk = 'x'.repeat(600)                   // ~632 bytes in the buffer's accounting

  // maxBlockMs 0: a send that does not fit in the buffer right now fails at once.
  const failFast = log.producer({ bufferMemory: 1000, maxBlockMs: 0 })
  const results = await Promise.allSettled([1, 2, 3].map(() => failFast.send({ topic: 'uploads', messages: [{ value: chunk }] })))
  for (const r of results) {
    console.log('maxBlockMs 0: ', r.status === 'fulfilled' ? `written at offset ${r.value[0].offset}` : `${(r.reason as StrandError).code}`)
  }

  // maxBlockMs N (default 60000) or -1 (no limit): the send waits until earlier batches are
  // written to the partition and free their room, in the order the sends were made.
  const patient = log.producer({ bufferMemory: 1000, maxBlockMs: 5_000 })
  const waited = await Promise.all([1, 2, 3].map(() => patient.send({ topic: 'uploads', messages: [{ value: chunk }] })))
  console.log('maxBlockMs 5000:', waited.map(([m]) => `offset ${m.offset}`).join(', '))

  // One send bigger than the whole buffer can never fit: it fails at once, whatever maxBlockMs.
  try {
    await patient.send({ topic: 'uploads', messages: [{ value: chunk }, { value: chunk }] })
  } catch (err) {
    console.log('too big:', (err as StrandError).code)
  }
  await Promise.all([failFast.close(), patient.close()])
} finally {
  await log.close()
  fs.rmSync(dir, { recursive: true, force: true })
}
