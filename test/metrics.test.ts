import { writeFile } from 'node:fs/promises'
import t from 'tap'
import { appOnFile, appOnText, basic } from './helpers/app.js'
import { scryptHash } from './helpers/hashes.js'

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
  t.equal(sample(body, 'gms_notification_subscriptions'), 0)
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
