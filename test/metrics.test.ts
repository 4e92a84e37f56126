import { writeFile } from 'node:fs/promises'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import t from 'tap'
import { KEY_PREFIX as NOTIFICATION_PREFIX } from '../services/notification/redis-store.js'
import { KEY_PREFIX as STORAGE_PREFIX } from '../services/storage/redis-store.js'
import { appOnFile, appOnText, basic } from './helpers/app.js'
import { scryptHash } from './helpers/hashes.js'
import { hasRedisServer, NO_REDIS_REASON, startRedis, untilExpired, type RedisProcess } from './helpers/redis.js'

const SECRET = 'metrics-s3cret'
const OTHER_SECRET = 'metrics-other-s3cret'
const INI = `[server]\nusername = ops\npassword = ${SECRET}\nmax_failures = 2\n`
const ops = { authorization: basic('ops', SECRET) }

/** The value of one sample line (`name{labels} value`), or undefined when absent. */
function sample (body: string, series: string): number | undefined {
  const line = body.split('\n').find(l => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

t.test('/metrics answers 401 without [server] credentials', async t => {
  const { app } = await appOnText(t, INI)
  const res = await app.inject({ url: '/metrics' })
  t.equal(res.statusCode, 401)
  t.equal(res.body, '')
})

t.test('/metrics counts allowed, denied and open requests by section', async t => {
  const { app } = await appOnText(t, INI)
  t.equal((await app.inject({ url: '/genesys/1/node', headers: ops })).statusCode, 200)
  t.equal((await app.inject({ url: '/genesys/1/node' })).statusCode, 401)
  t.equal((await app.inject({ url: '/genesys/1/node', headers: { authorization: basic('ops', 'metrics-wrong') } })).statusCode, 401)
  await app.inject({ url: '/health' })
  const res = await app.inject({ url: '/metrics', headers: ops })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  // The scrape itself is an allowed [server] request, counted before it is answered.
  t.equal(sample(res.body, 'gms_gate_requests_total{section="server",outcome="allowed"}'), 2)
  t.equal(sample(res.body, 'gms_gate_requests_total{section="server",outcome="denied"}'), 2)
  t.equal(sample(res.body, 'gms_gate_requests_total{section="server",outcome="throttled"}'), 0)
  t.equal(sample(res.body, 'gms_gate_requests_total{section="none",outcome="open"}'), 1)
  t.match(res.body, /# TYPE gms_gate_requests_total counter/)
  t.match(res.body, /^gms_gate_verify_cache_hits_total \d+$/m)
})

t.test('a hashed secret checked twice counts a verify-cache hit', async t => {
  const { app } = await appOnText(t, `[server]\nusername = ops\npassword = ${scryptHash(SECRET)}\n`)
  const hits = async (): Promise<number> => sample(await app.gmsMetrics.metrics(), 'gms_gate_verify_cache_hits_total')!
  const before = await hits()
  t.equal((await app.inject({ url: '/genesys/1/node', headers: ops })).statusCode, 200)
  t.equal((await app.inject({ url: '/genesys/1/node', headers: ops })).statusCode, 200)
  t.ok(await hits() > before)
})

t.test('/metrics shows the options hash, storage ids, subscriptions and deliveries', async t => {
  const { app } = await appOnText(t, INI)
  await app.gmsStorage.create({ k: { type: 'text', value: 'v' } }, 60)
  const body = (await app.inject({ url: '/metrics', headers: ops })).body
  t.equal(sample(body, `gms_gate_options_info{hash="${app.gmsGate.current().options.hash}"}`), 1)
  t.equal(sample(body, 'gms_storage_ids{backend="memory"}'), 1)
  t.equal(sample(body, 'gms_notification_subscriptions{backend="memory"}'), 0)
  t.equal(sample(body, 'gms_notification_delivery_attempts_total'), 0)
  t.equal(sample(body, 'gms_notification_delivery_failures_total'), 0)
})

t.test('/metrics holds no secret', async t => {
  const { app } = await appOnText(t, INI)
  await app.inject({ url: '/genesys/1/node', headers: { authorization: basic('ops', 'metrics-wrong') } })
  const body = (await app.inject({ url: '/metrics', headers: ops })).body
  t.notMatch(body, SECRET)
  t.notMatch(body, 'metrics-wrong')
  t.notMatch(body, ops.authorization.slice(6))
})

t.test('two apps in one process keep separate metrics', async t => {
  const a = await appOnText(t, INI)
  const b = await appOnText(t, INI)
  await a.app.inject({ url: '/health' })
  const body = (await b.app.inject({ url: '/metrics', headers: ops })).body
  t.equal(sample(body, 'gms_gate_requests_total{section="none",outcome="open"}'), 0)
})

t.test('a reload is counted, dated and written to the audit stream', async t => {
  const h = await appOnFile(t, INI)
  const before = h.app.gmsGate.current().options.hash
  const reloaded = h.nextReload()
  await writeFile(h.file, `[server]\nusername = ops\npassword = ${OTHER_SECRET}\n`)
  await reloaded
  const after = h.app.gmsGate.current().options.hash
  const rejected = h.nextReloadError()
  await writeFile(h.file, '[server\n')
  await rejected
  const body = (await h.app.inject({ url: '/metrics', headers: { authorization: basic('ops', OTHER_SECRET) } })).body
  t.equal(sample(body, 'gms_gate_options_reloads_total{result="applied"}'), 1)
  t.equal(sample(body, 'gms_gate_options_reloads_total{result="rejected"}'), 1)
  t.equal(sample(body, `gms_gate_options_info{hash="${after}"}`), 1)
  t.equal(sample(body, `gms_gate_options_info{hash="${before}"}`), undefined)
  t.ok(Math.abs(sample(body, 'gms_gate_options_loaded_timestamp_seconds')! - Date.now() / 1000) < 60)
  const audit = h.logs.lines.filter(l => l.audit === true)
  const applied = audit.find(l => l.event === 'options-reload')
  t.match(applied, { hashBefore: before, hashAfter: after, changed: ['server'] })
  t.match(audit.find(l => l.event === 'options-rejected'), { hashInForce: after, line: 1 })
  t.notOk(h.logs.contains(SECRET) || h.logs.contains(OTHER_SECRET), 'no password in any log line')
})

t.test('a denial and the start of a throttle are audit lines without the password', async t => {
  const { app, logs } = await appOnText(t, INI)
  const wrong = { authorization: basic('ops', 'metrics-wrong') }
  t.equal((await app.inject({ url: '/genesys/1/node', headers: wrong })).statusCode, 401)
  t.equal((await app.inject({ url: '/genesys/1/node', headers: wrong })).statusCode, 401)
  t.equal((await app.inject({ url: '/genesys/1/node', headers: wrong })).statusCode, 429)
  const audit = logs.lines.filter(l => l.audit === true)
  t.match(audit.find(l => l.msg === 'authentication failed'), { section: 'server', username: 'ops', ip: '127.0.0.1' })
  t.match(audit.find(l => /client throttled/.test(l.msg ?? '')), { section: 'server', username: 'ops', ip: '127.0.0.1', reason: 'failure limit reached' })
  t.notOk(logs.contains('metrics-wrong') || logs.contains(wrong.authorization.slice(6)), 'no password or header in any log line')
  // The throttle now refuses this username too: read the registry directly.
  const body = await app.gmsMetrics.metrics()
  t.equal(sample(body, 'gms_gate_requests_total{section="server",outcome="throttled"}'), 1)
})

t.test('with the Redis backends', { skip: hasRedisServer ? false : NO_REDIS_REASON }, async t => {
  const onRedis = (redis: RedisProcess): string =>
    `${INI}[storage]\nbackend = redis\nredis_url = ${redis.url}\n[notification]\nbackend = redis\nredis_url = ${redis.url}\n`
  const scrape = (app: FastifyInstance) => app.inject({ url: '/metrics', headers: ops })
  const JSON_AUTH = { ...ops, 'content-type': 'application/json' }
  const store = async (app: FastifyInstance, ttl: number): Promise<string> =>
    (await app.inject({ method: 'POST', url: `/genesys/1/storage/${ttl}`, headers: JSON_AUTH, payload: '{"k":"v"}' })).json().id
  const subscribe = async (app: FastifyInstance, expire: number): Promise<string> =>
    (await app.inject({ method: 'POST', url: '/genesys/1/notification/subscription', headers: JSON_AUTH, payload: JSON.stringify({ subscriberId: 's', filter: 'x', expire, notificationDetails: { type: 'sse' } }) })).json().id

  t.test('/metrics counts storage ids and subscriptions in Redis, cluster-wide, with backend="redis"', async t => {
    const redis = await startRedis()
    t.teardown(() => redis.kill())
    const probe = new Redis(redis.url, { maxRetriesPerRequest: 0 })
    t.teardown(() => probe.disconnect())
    const a = (await appOnText(t, onRedis(redis))).app
    const b = (await appOnText(t, onRedis(redis))).app
    const counts = async (app: FastifyInstance): Promise<[number | undefined, number | undefined]> => {
      const res = await scrape(app)
      t.equal(res.statusCode, 200)
      return [sample(res.body, 'gms_storage_ids{backend="redis"}'), sample(res.body, 'gms_notification_subscriptions{backend="redis"}')]
    }
    t.same(await counts(b), [0, 0])
    const kept = await store(a, 60)
    const short = await store(a, 0.3)
    const sub = await subscribe(a, 60)
    const shortSub = await subscribe(a, 1)
    t.same(await counts(b), [2, 2], 'made on A, counted on B')
    t.equal((await b.inject({ method: 'DELETE', url: `/genesys/1/storage/${kept}`, headers: ops })).statusCode, 200)
    t.equal((await b.inject({ method: 'DELETE', url: `/genesys/1/notification/subscription/${sub}`, headers: ops })).statusCode, 204)
    t.same(await counts(a), [1, 1], 'deleted on B, gone on A')
    await untilExpired(probe, STORAGE_PREFIX + short)
    await untilExpired(probe, `${NOTIFICATION_PREFIX}sub:${shortSub}`)
    t.same(await counts(a), [0, 0], 'expired')
    const body = (await scrape(a)).body
    t.match(body, /# HELP gms_storage_ids .*cluster-wide/)
    t.match(body, /# HELP gms_notification_subscriptions .*cluster-wide/)
  })

  t.test('a scrape with Redis stopped answers 200 without the Redis gauges, and says why once', async t => {
    const redis = await startRedis()
    t.teardown(() => redis.kill())
    const { app, logs } = await appOnText(t, onRedis(redis))
    await store(app, 60)
    t.equal(sample((await scrape(app)).body, 'gms_storage_ids{backend="redis"}'), 1)
    await redis.kill()
    for (let i = 0; i < 2; i++) {
      const res = await scrape(app)
      t.equal(res.statusCode, 200)
      t.equal(sample(res.body, 'gms_storage_ids{backend="redis"}'), undefined)
      t.equal(sample(res.body, 'gms_notification_subscriptions{backend="redis"}'), undefined)
      t.ok(sample(res.body, 'gms_gate_requests_total{section="server",outcome="allowed"}')! > 0, 'the other metrics are there')
    }
    const omitted = logs.lines.filter(l => l.msg === 'metric sample omitted: its backend did not answer')
    t.same(omitted.map(l => l.metric).sort(), ['gms_notification_subscriptions', 'gms_storage_ids'], 'once per gauge and outage')
    t.notOk(logs.contains(SECRET), 'no password in any log line')
  })

  t.test('a scrape with Redis frozen answers within the command timeout', async t => {
    const redis = await startRedis()
    t.teardown(() => redis.kill())
    const probe = new Redis(redis.url, { maxRetriesPerRequest: 0 })
    const pid = Number(/process_id:(\d+)/.exec(await probe.info('server'))![1])
    probe.disconnect()
    const { app } = await appOnText(t, onRedis(redis))
    await store(app, 60)
    t.equal(sample((await scrape(app)).body, 'gms_storage_ids{backend="redis"}'), 1)
    process.kill(pid, 'SIGSTOP')
    let frozen = true
    const thaw = (): void => { if (frozen) process.kill(pid, 'SIGCONT'); frozen = false }
    t.teardown(thaw)
    const started = Date.now()
    const res = await scrape(app)
    const elapsed = Date.now() - started
    thaw()
    t.equal(res.statusCode, 200)
    t.equal(sample(res.body, 'gms_storage_ids{backend="redis"}'), undefined)
    // 1 s command timeout, both gauges at once; slack for a loaded machine.
    t.ok(elapsed < 2500, `answered in ${elapsed} ms`)
  })
})
