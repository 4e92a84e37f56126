import t from 'tap'
import { HashLimit } from '../plugins/hash-limit.js'
import { appOnText, basic } from './helpers/app.js'
import { scryptHash } from './helpers/hashes.js'

/** A check that ends when the test says so. */
function gate (): { check: () => Promise<string>, open: () => void } {
  let open!: () => void
  const opened = new Promise<void>(resolve => { open = resolve })
  return { check: async () => { await opened; return 'done' }, open }
}

t.test('checks beyond the cap wait, beyond the queue they are refused at once', async t => {
  const limit = new HashLimit({ running: 1, queued: 1 })
  const a = gate()
  const b = gate()
  const first = limit.run(a.check)
  const second = limit.run(b.check)
  t.equal(limit.running, 1)
  t.equal(limit.queued, 1)
  await t.rejects(limit.run(async () => 'never'), { code: 'GMS_GATE_HASH_CHECKS_BUSY', statusCode: 503 })
  t.equal(limit.refusedCount, 1)
  b.open()
  a.open()
  t.same(await Promise.all([first, second]), ['done', 'done'])
  t.equal(limit.running, 0)
  t.equal(limit.queued, 0)
})

t.test('a failed check frees its slot', async t => {
  const limit = new HashLimit({ running: 1, queued: 0 })
  await t.rejects(limit.run(async () => { throw new Error('hash failed') }), /hash failed/)
  t.equal(await limit.run(async () => 'next'), 'next')
})

t.test('raising the cap admits waiting checks at once', async t => {
  const limit = new HashLimit({ running: 1, queued: 5 })
  const a = gate()
  const first = limit.run(a.check)
  const second = limit.run(async () => 'second')
  t.equal(limit.queued, 1)
  limit.configure({ running: 2, queued: 5 })
  t.equal(await second, 'second', 'ran while the first still holds its slot')
  a.open()
  await first
})

t.test('over HTTP: hash checks from many addresses beyond the cap get 503 with Retry-After, count no failure, and log once', async t => {
  // About 100 ms per check, one at a time, one waiting.
  const ini = `[server]\nusername = admin\npassword = ${scryptHash('adm1n-hashed', 15)}\nmax_hash_checks = 1\nmax_hash_queue = 1\nmax_failures = 1\nmax_failures_per_ip = 1\n`
  const { app, logs } = await appOnText(t, ini)
  // Warm the cache for the right password: a cached success never needs a slot.
  t.equal((await app.inject({ url: '/genesys/1/node', headers: { authorization: basic('admin', 'adm1n-hashed') } })).statusCode, 200)
  const guesses = await Promise.all([1, 2, 3, 4, 5].map(i => app.inject({
    url: '/genesys/1/node',
    remoteAddress: `192.0.2.${i}`,
    headers: { authorization: basic('admin', `guess-${i}`) }
  })))
  const statuses = guesses.map(r => r.statusCode).sort()
  t.same(statuses, [401, 401, 503, 503, 503], 'one running, one waiting, the rest refused')
  for (const r of guesses.filter(r => r.statusCode === 503)) t.equal(r.headers['retry-after'], '1')
  t.equal(logs.lines.filter(l => l.msg?.startsWith('password hash checks saturated')).length, 1, 'one line for the episode')
  t.notOk(logs.lines.some(l => l.level >= 50), 'no error line per refused request')
  // A refused guess counted no failure: with max_failures = 1, its address may still fail once, then is throttled.
  const refusedIp = `192.0.2.${guesses.findIndex(r => r.statusCode === 503) + 1}`
  const again = async () => (await app.inject({ url: '/genesys/1/node', remoteAddress: refusedIp, headers: { authorization: basic('admin', 'guess-again') } })).statusCode
  t.equal(await again(), 401)
  t.equal(await again(), 429)
  t.equal((await app.inject({ url: '/genesys/1/node', headers: { authorization: basic('admin', 'adm1n-hashed') } })).statusCode, 200, 'the cached caller passes')
  const metrics = await app.inject({ url: '/metrics', headers: { authorization: basic('admin', 'adm1n-hashed') } })
  t.match(metrics.body, /^gms_gate_hash_checks_refused_total [1-9]\d*$/m)
})

t.test('max_hash_checks and max_hash_queue are validated at load with their line, and default to the CPU count and 64', async t => {
  const { loadOptionsText } = await import('../plugins/options-watch.js')
  t.throws(() => loadOptionsText('[server]\n\nmax_hash_checks = 0\n'), { name: 'OptionsError', line: 3, message: /max_hash_checks in \[server\] must be a whole number/ })
  t.throws(() => loadOptionsText('[server]\nmax_hash_queue = lots\n'), { name: 'OptionsError', line: 2, message: /max_hash_queue in \[server\] must be a whole number/ })
  t.same(loadOptionsText('[server]\nmax_hash_checks = 3\nmax_hash_queue = 7\n').security.hashLimit, { running: 3, queued: 7 })
  const { availableParallelism } = await import('node:os')
  t.same(loadOptionsText('[server]\n').security.hashLimit, { running: availableParallelism(), queued: 64 })
})
