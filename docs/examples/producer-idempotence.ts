/**
 * docs/producer.md, "Idempotence": producer ids, per-partition sequences, how a partition
 * answers a retried batch, and what of it survives closing and reopening the log.
 *
 *   npx tsx docs/examples/producer-idempotence.ts
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Log, StrandError } from '../../lib/index.js'

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-producer-'))
let log = await Log.open(dir)
try {
  await log.createTopic('payments', { partitions: 2 })

  // Each producer gets an id no other producer of this directory ever had.
  const first = log.producer()
  const second = log.producer()
  await Promise.all([first.connect(), second.connect()])
  console.log('producer ids:', first.producerId, second.producerId)

  // Every batch carries the producer id and the sequence of its first record; sequences
  // count records per partition, from 0.
  await first.send({ topic: 'payments', messages: [{ value: 'a', partition: 0 }, { value: 'b', partition: 0 }, { value: 'c', partition: 1 }] })
  await first.send({ topic: 'payments', messages: [{ value: 'd', partition: 0 }] })
  for (const p of log.topic('payments').partitions) {
    for (const b of p.read(0).batches) console.log(`p${p.id} batch @${b.baseOffset}: ${b.count} record(s), producer ${b.producerId}, first sequence ${b.baseSequence}`)
  }

  // What a retry meets: the producer repeats a batch whose acknowledgement it never saw.
  // `second` has an id but sends nothing itself; its id is used here to make the calls that
  // its own retries would make.
  const p0 = log.topic('payments').partition(0)
  const id = { id: second.producerId, epoch: 0 }
  console.log('write:  ', await p0.append([{ value: 'e' }, { value: 'f' }], { producer: { ...id, sequence: 0 } }))
  console.log('retry:  ', await p0.append([{ value: 'e' }, { value: 'f' }], { producer: { ...id, sequence: 0 } }))
  try {
    await p0.append([{ value: 'h' }], { producer: { ...id, sequence: 5 } })
  } catch (err) {
    console.log('gap:    ', (err as StrandError).code, '-', (err as Error).message)
  }
  await Promise.all([first.close(), second.close()])

  // The partition's memory of producers survives a close and reopen (snapshot + replay)…
  await log.close()
  log = await Log.open(dir)
  const reopened = log.topic('payments').partition(0)
  console.log('after reopen, retry:', await reopened.append([{ value: 'e' }, { value: 'f' }], { producer: { ...id, sequence: 0 } }))

  // …but a producer object does not: a new one, in this process or the next, gets a new id
  // (ids are reserved in blocks of 1000, so the first after a reopen starts a new block), and
  // the partition cannot tell its resend of an old message from a new message.
  const restarted = log.producer()
  await restarted.send({ topic: 'payments', messages: [{ value: 'e', partition: 0 }] })
  console.log('new producer id:', restarted.producerId, '- partition 0 now holds', reopened.logEndOffset, 'records')
  await restarted.close()
} finally {
  await log.close()
  fs.rmSync(dir, { recursive: true, force: true })
}
