import t, { type Test } from 'tap'
import { appOnText, basic } from './helpers/app.js'
import { hasRedisServer, NO_REDIS_REASON, startRedis } from './helpers/redis.js'
import { scryptHash } from './helpers/hashes.js'
import { loggableUsername } from '../plugins/throttle.js'
import type { FastifyInstance } from 'fastify'

const PASSWORD = 'throttle-pw-41c9'
const ini = (extra = ''): string => `[server]\nusername = alice\npassword = ${PASSWORD}\nmax_failures = 3\nmax_failures_per_ip = 5\n${extra}`
const NODE = '/genesys/1/node'

async function get (app: FastifyInstance, user: string, pass: string, ip = '10.0.0.1') {
  return app.inject({ url: NODE, remoteAddress: ip, headers: { authorization: basic(user, pass) } })
}

t.test('a hashed password in the options file lets its owner in and keeps others out', async t => {
  const { app } = await appOnText(t, `[server]\nusername = alice\npassword = ${scryptHash(PASSWORD)}\n`)
  t.equal((await get(app, 'alice', PASSWORD)).statusCode, 200)
  t.equal((await get(app, 'alice', 'nope')).statusCode, 401)
  t.equal((await get(app, 'bob', PASSWORD)).statusCode, 401)
})

t.test('after max_failures for one username, that username gets 429 with Retry-After, even with the right password', async t => {
  const { app } = await appOnText(t, ini())
  for (let i = 0; i < 3; i++) t.equal((await get(app, 'alice', 'guess-1x')).statusCode, 401)
  const res = await get(app, 'alice', PASSWORD)
  t.equal(res.statusCode, 429)
  t.match(res.headers['retry-after'], /^\d+$/)
  t.ok(Number(res.headers['retry-after']) >= 1 && Number(res.headers['retry-after']) <= 60)
  t.equal(res.json().code, 'GMS_GATE_THROTTLED')
})

t.test('a throttled request computes no hash', async t => {
  // A hash slow enough that any verification would show in the time.
  const slow = scryptHash(PASSWORD, 15)
  const { app } = await appOnText(t, `[server]\nusername = alice\npassword = ${slow}\nmax_failures = 1\n`)
  t.equal((await get(app, 'alice', 'guess-1x')).statusCode, 401)
  const start = process.hrtime.bigint()
  t.equal((await get(app, 'alice', 'guess-2x')).statusCode, 429)
  const ms = Number(process.hrtime.bigint() - start) / 1e6
  const verifyStart = process.hrtime.bigint()
  t.equal((await get(app, 'bob', 'x', '10.0.0.2')).statusCode, 401)
  const verifyMs = Number(process.hrtime.bigint() - verifyStart) / 1e6
  t.ok(ms * 4 < verifyMs, `the 429 took ${ms.toFixed(1)} ms, a verification ${verifyMs.toFixed(1)} ms`)
})

t.test('successes are not counted: the owner can log in any number of times', async t => {
  const { app } = await appOnText(t, ini())
  for (let i = 0; i < 10; i++) t.equal((await get(app, 'alice', PASSWORD)).statusCode, 200)
})

t.test('another username from the same IP is counted apart until the per-IP limit', async t => {
  const { app } = await appOnText(t, ini())
  for (let i = 0; i < 3; i++) await get(app, 'alice', 'guess-1x')
  t.equal((await get(app, 'bob', 'guess-1x')).statusCode, 401, 'bob has his own counter')
  t.equal((await get(app, 'carol', 'guess-1x')).statusCode, 401, 'fifth failure from the IP')
  t.equal((await get(app, 'dave', 'x')).statusCode, 429, 'the IP is over max_failures_per_ip')
})

t.test('one client being throttled does not throttle another IP, and a success does not reset it', async t => {
  const { app } = await appOnText(t, ini())
  for (let i = 0; i < 3; i++) await get(app, 'alice', 'guess-1x', '10.0.0.1')
  t.equal((await get(app, 'alice', PASSWORD, '10.0.0.2')).statusCode, 200)
  t.equal((await get(app, 'alice', PASSWORD, '10.0.0.1')).statusCode, 429)
})

t.test('IPv6 clients are counted per /64', async t => {
  const { app } = await appOnText(t, ini())
  for (let i = 0; i < 5; i++) await get(app, `user${i}`, 'guess-1x', `2001:db8:1:2::${i + 1}`)
  t.equal((await get(app, 'alice', PASSWORD, '2001:db8:1:2:ffff::9')).statusCode, 429, 'same /64')
  t.equal((await get(app, 'alice', PASSWORD, '2001:db8:1:3::1')).statusCode, 200, 'next /64')
})

t.test('a request without any Authorization header is challenged and never counted', async t => {
  const { app, logs } = await appOnText(t, ini())
  for (let i = 0; i < 10; i++) t.equal((await app.inject({ url: NODE, remoteAddress: '10.0.0.1' })).statusCode, 401)
  t.equal((await get(app, 'alice', PASSWORD)).statusCode, 200)
  t.notOk(logs.contains('authentication failed'))
})

t.test('malformed headers count against the IP', async t => {
  const { app } = await appOnText(t, ini())
  for (let i = 0; i < 5; i++) await app.inject({ url: NODE, remoteAddress: '10.0.0.1', headers: { authorization: 'Basic !!!' } })
  t.equal((await get(app, 'alice', PASSWORD)).statusCode, 429)
})

t.test('X-Forwarded-For is ignored unless trust_proxy is set', async t => {
  const { app } = await appOnText(t, ini())
  for (let i = 0; i < 3; i++) {
    await app.inject({ url: NODE, remoteAddress: '10.0.0.1', headers: { authorization: basic('alice', 'x'), 'x-forwarded-for': `192.0.2.${i}` } })
  }
  t.equal((await get(app, 'alice', PASSWORD, '10.0.0.1')).statusCode, 429)
})

t.test('each failure logs a warning with section, escaped username, IP and reason, and the throttle logs once', async t => {
  const { app, logs } = await appOnText(t, ini())
  await get(app, 'alice', 'wrong-1')
  await get(app, 'm\u00e9\u2028"x"', 'wrong-2')
  await get(app, 'alice', 'wrong-3')
  await get(app, 'alice', 'wrong-4')
  await get(app, 'alice', 'wrong-5')
  const failures = logs.lines.filter(l => l.msg === 'authentication failed')
  t.equal(failures.length, 4, 'the fifth request was throttled, not verified')
  t.match(failures[0], { section: 'server', username: 'alice', ip: '10.0.0.1', reason: 'wrong-password' })
  t.match(failures[1], { username: 'm\\u00e9\\u2028"x"', reason: 'unknown-user' })
  t.equal(logs.lines.filter(l => /client throttled/.test(l.msg ?? '')).length, 1)
  for (const secret of ['wrong-1', 'wrong-2', 'wrong-3', 'wrong-4', PASSWORD]) t.notOk(logs.contains(secret), `no ${secret}`)
})

t.test('a logged username is capped at 64 characters', async t => {
  t.equal(loggableUsername('a'.repeat(100)), 'a'.repeat(64) + '...')
  t.equal(loggableUsername('back\\slash'), 'back\\\\slash')
})

t.test('limits are validated at load with their line', async t => {
  const { loadOptionsText } = await import('../plugins/options-watch.js')
  const lineOf = (text: string): number => {
    try {
      loadOptionsText(text)
    } catch (err) {
      return (err as { line: number }).line
    }
    return -1
  }
  t.equal(lineOf('[server]\n\nmax_failures = 0\n'), 3)
  t.equal(lineOf('[server]\nfailure_window = soon\n'), 2)
  t.equal(lineOf('[server]\nthrottle_store = disk\n'), 2)
  t.equal(lineOf('[server]\ntrust_proxy = 10.0.0.0/99\n'), 2)
  t.equal(loadOptionsText('[server]\nfailure_window = 10m\n').security.failureWindowMs, 600_000)
})

async function redisPair (t: Test, url: string): Promise<[FastifyInstance, FastifyInstance]> {
  const text = ini(`throttle_store = redis\nredis_url = ${url}\n`)
  const a = await appOnText(t, text)
  const b = await appOnText(t, text)
  return [a.app, b.app]
}

t.test('with throttle_store = redis, two instances share failure counters', { skip: hasRedisServer ? false : NO_REDIS_REASON }, async t => {
  const redis = await startRedis()
  t.teardown(() => redis.kill())
  const [a, b] = await redisPair(t, redis.url)
  await a.ready()
  await b.ready()
  t.equal((await get(a, 'alice', 'guess-1x')).statusCode, 401)
  t.equal((await get(b, 'alice', 'guess-1x')).statusCode, 401)
  t.equal((await get(a, 'alice', 'guess-1x')).statusCode, 401)
  t.equal((await get(b, 'alice', PASSWORD)).statusCode, 429, 'B counts the failures made on A')
})

t.test('with the redis store down, credentials are still checked and nothing hangs', { skip: hasRedisServer ? false : NO_REDIS_REASON }, async t => {
  const redis = await startRedis()
  const [a] = await redisPair(t, redis.url)
  await redis.kill()
  t.equal((await get(a, 'alice', 'guess-1x')).statusCode, 401)
  t.equal((await get(a, 'alice', PASSWORD)).statusCode, 200)
})

t.test('concurrent wrong guesses from one client cannot overrun max_failures together', async t => {
  const { app } = await appOnText(t, `[server]\nusername = alice\npassword = ${scryptHash(PASSWORD)}\nmax_failures = 2\nmax_failures_per_ip = 50\n`)
  const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => get(app, 'alice', `guess-${i}-x`)))
  const counts = answers.reduce<Record<number, number>>((acc, res) => ({ ...acc, [res.statusCode]: (acc[res.statusCode] ?? 0) + 1 }), {})
  t.same(counts, { 401: 2, 429: 8 }, 'exactly max_failures guesses are verified, the rest are throttled')
})
