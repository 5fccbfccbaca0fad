// bullmq_bench.js - BullMQ's side of bench/run: how fast BullMQ enqueues
// jobs, and how fast one Worker process drains no-op jobs at a given
// concurrency, against the same Redis as agentgate (its own database
// number, so the two never see each other's keys).
//
//   node bullmq_bench.js enqueue --port P [--db N] [--seconds S] [--inflight N]
//   node bullmq_bench.js process --port P [--db N] [--seconds S] --concurrency C
//
// enqueue: Queue.add() with --inflight (64, like wrk's connections) calls
// outstanding at all times for --seconds. process: fills a queue with
// enough jobs first (Queue.addBulk, not timed), then times a Worker whose
// processor returns at once, from its first completed job for --seconds.
// Jobs keep BullMQ's defaults (completed jobs are kept, as agentgate keeps
// its rows). Prints one line of key=value pairs.
'use strict';
const { Queue, Worker } = require('bullmq');

function args() {
  const a = { mode: process.argv[2], port: 6379, db: 1, seconds: 10, inflight: 64, concurrency: 1 };
  for (let i = 3; i + 1 < process.argv.length; i += 2) {
    const k = process.argv[i].replace(/^--/, '');
    a[k] = Number(process.argv[i + 1]);
  }
  return a;
}

async function enqueue(a, connection) {
  const q = new Queue(`bench-enqueue-${process.pid}`, { connection });
  await q.waitUntilReady();
  let done = 0, errors = 0;
  const t0 = process.hrtime.bigint();
  const end = t0 + BigInt(a.seconds * 1e9);
  async function lane() {
    while (process.hrtime.bigint() < end) {
      try { await q.add('noop', { n: done }); done++; } catch (e) { errors++; }
    }
  }
  await Promise.all(Array.from({ length: a.inflight }, lane));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  await q.obliterate({ force: true });
  await q.close();
  console.log(`jobs=${done} errors=${errors} rate=${(done / secs).toFixed(0)} seconds=${secs.toFixed(1)}`);
}

async function fill(q, n) {
  const batch = [];
  for (let i = 0; i < 1000; i++) batch.push({ name: 'noop', data: { n: i } });
  for (let left = n; left > 0; left -= 1000) await q.addBulk(left >= 1000 ? batch : batch.slice(0, left));
}

async function processRate(a, connection) {
  const name = `bench-process-${process.pid}-${a.concurrency}`;
  const q = new Queue(name, { connection });
  // Enough for --seconds at well above the rates seen here (one job at a
  // time: ~4,000/s; at concurrency 100: ~10,000/s); a run that empties it
  // says so (backlog_ran_out=1).
  const backlog = Math.min((a.concurrency > 1 ? 25000 : 10000) * a.seconds, 400000);
  await fill(q, backlog);
  let done = 0, first = null, stopAt = null, resolveDone;
  const finished = new Promise((r) => { resolveDone = r; });
  const w = new Worker(name, async () => {}, { connection, concurrency: a.concurrency, autorun: false });
  w.on('completed', () => {
    const now = process.hrtime.bigint();
    if (first === null) { first = now; stopAt = now + BigInt(a.seconds * 1e9); return; }
    if (now <= stopAt) done++;
    if (now > stopAt || done + 1 >= backlog) resolveDone(now);
  });
  w.run();
  const last = await Promise.race([finished,
    new Promise((r) => setTimeout(() => r(process.hrtime.bigint()), (a.seconds + 30) * 1000))]);
  const secs = first === null ? 0 : Number((last < stopAt ? last : stopAt) - first) / 1e9;
  await w.close(true);
  await q.obliterate({ force: true });
  await q.close();
  const ranOut = done + 1 >= backlog ? ' backlog_ran_out=1' : '';
  console.log(`concurrency=${a.concurrency} jobs=${done} rate=${secs > 0 ? (done / secs).toFixed(0) : 0} seconds=${secs.toFixed(1)}${ranOut}`);
}

(async () => {
  const a = args();
  const connection = { host: '127.0.0.1', port: a.port, db: a.db, maxRetriesPerRequest: null };
  if (a.mode === 'enqueue') await enqueue(a, connection);
  else if (a.mode === 'process') await processRate(a, connection);
  else { console.error('usage: node bullmq_bench.js enqueue|process --port P [...]'); process.exit(2); }
  process.exit(0);
})().catch((e) => { console.error(`bullmq_bench: ${e && e.stack || e}`); process.exit(1); });
