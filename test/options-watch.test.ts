import { once } from 'node:events'
import { rename, rm, writeFile } from 'node:fs/promises'
import t from 'tap'
import { appOnFile, basic } from './helpers/app.js'

const V1 = '[server]\nusername = default\npassword = first-secret\n'
const V2 = '[server]\nusername = default\npassword = second-secret\n'
const first = { authorization: basic('default', 'first-secret') }
const second = { authorization: basic('default', 'second-secret') }

t.test('an edit in place applies without a restart', async t => {
  const h = await appOnFile(t, V1)
  t.equal((await h.app.inject({ url: '/genesys/1/node', headers: first })).statusCode, 200)
  const reloaded = h.nextReload()
  await writeFile(h.file, V2)
  const { changed } = await reloaded
  t.same(changed, ['server'])
  t.equal((await h.app.inject({ url: '/genesys/1/node', headers: first })).statusCode, 401)
  t.equal((await h.app.inject({ url: '/genesys/1/node', headers: second })).statusCode, 200)
})

t.test('a write to a temp file then a rename over the options file applies', async t => {
  const h = await appOnFile(t, V1)
  const reloaded = h.nextReload()
  await writeFile(`${h.file}.tmp`, V2)
  await rename(`${h.file}.tmp`, h.file)
  await reloaded
  t.equal((await h.app.inject({ url: '/genesys/1/node', headers: second })).statusCode, 200)
  // The watcher still follows the file after its inode changed.
  const again = h.nextReload()
  await writeFile(h.file, V1)
  await again
  t.equal((await h.app.inject({ url: '/genesys/1/node', headers: first })).statusCode, 200)
})

t.test('a deleted file keeps the last good options, and a recreated one applies', async t => {
  const h = await appOnFile(t, V1)
  const rejected = h.nextReloadError()
  await rm(h.file)
  const { error } = await rejected
  t.equal(error.reason, 'file not found')
  t.equal((await h.app.inject({ url: '/genesys/1/node', headers: first })).statusCode, 200)
  t.equal((await h.app.inject({ url: '/genesys/1/node' })).statusCode, 401, 'a deleted file never opens a door')
  const reloaded = h.nextReload()
  await writeFile(h.file, V2)
  await reloaded
  t.equal((await h.app.inject({ url: '/genesys/1/node', headers: second })).statusCode, 200)
})

t.test('SIGHUP reloads the file', async t => {
  // No file watching: only the signal can apply the edit.
  const h = await appOnFile(t, V1, { sighup: true, watch: false })
  const watcher = h.app.gmsGate.watcher!
  await writeFile(h.file, V2)
  t.equal((await h.app.inject({ url: '/genesys/1/node', headers: first })).statusCode, 200, 'not applied before the signal')
  const reloaded = once(watcher, 'reload')
  process.kill(process.pid, 'SIGHUP')
  const [{ trigger }] = await reloaded
  t.equal(trigger, 'SIGHUP')
  t.equal((await h.app.inject({ url: '/genesys/1/node', headers: second })).statusCode, 200)
})

t.test('an invalid edit is logged with its line and the last good options stay in force', async t => {
  const h = await appOnFile(t, V1)
  const rejected = h.nextReloadError()
  await writeFile(h.file, '[server]\nusername = default\npassword = second-secret\n[storage\n')
  const { error } = await rejected
  t.equal(error.line, 4)
  const line = h.logs.lines.find(l => l.msg?.startsWith('options rejected'))
  t.ok(line, 'the rejection is logged')
  t.match(line, { level: 50, line: 4, file: h.file, reason: /malformed section header/ })
  t.equal((await h.app.inject({ url: '/genesys/1/node', headers: first })).statusCode, 200)
  t.equal((await h.app.inject({ url: '/genesys/1/node', headers: second })).statusCode, 401)

  const reloaded = h.nextReload()
  await writeFile(h.file, V2)
  await reloaded
  t.equal((await h.app.inject({ url: '/genesys/1/node', headers: second })).statusCode, 200, 'a valid edit after an invalid one applies')
})

t.test('a password without any username on reload is refused with its line', async t => {
  const h = await appOnFile(t, V1)
  const rejected = h.nextReloadError()
  await writeFile(h.file, '[server]\n\n[storage]\n\n[notification]\npassword = x\n')
  t.match((await rejected).error, { line: 6, reason: /\[notification\] has a password/ })
  t.equal((await h.app.inject({ url: '/genesys/1/node' })).statusCode, 401, 'the last good options stay')
  const withUser = h.nextReload()
  await writeFile(h.file, '[server]\nusername = default\npassword = first-secret\n[notification]\nusername = n\npassword = x\n')
  await withUser
  t.equal((await h.app.inject({ url: '/genesys/1/notification/x', headers: { authorization: basic('n', 'x') } })).statusCode, 404)
})

t.test('an emptied file is refused on reload: a truncated write never opens every door', async t => {
  const h = await appOnFile(t, V1)
  const rejected = h.nextReloadError()
  await writeFile(h.file, '')
  t.match((await rejected).error.reason, /no section/)
  t.equal((await h.app.inject({ url: '/genesys/1/node' })).statusCode, 401)
})

t.test('a [service.x] added while the server runs is protected at once', async t => {
  const h = await appOnFile(t, '[server]\n')
  t.equal((await h.app.inject({ method: 'POST', url: '/genesys/1/service/x' })).statusCode, 404)
  const reloaded = h.nextReload()
  await writeFile(h.file, '[server]\n[service.x]\nusername = xu\npassword = xp\n_type = builtin\n_service = match-interaction\n')
  const { changed } = await reloaded
  t.same(changed, ['service.x'])
  const res = await h.app.inject({ method: 'POST', url: '/genesys/1/service/x' })
  t.equal(res.statusCode, 401)
  t.equal(res.headers['www-authenticate'], 'Basic realm="Genesys Application Configuration Needed", charset="UTF-8"')
})

t.test('a changed listen address is logged as needing a restart', async t => {
  const h = await appOnFile(t, '[server]\nport = 8080\n')
  const reloaded = h.nextReload()
  await writeFile(h.file, '[server]\nport = 9090\n')
  await reloaded
  t.ok(h.logs.lines.some(l => l.level === 40 && l.option === '[server] host, port, ports, metrics_port' && l.msg?.includes('restart needed')))
})

t.test('each start-only option changed by an edit is logged once as needing a restart, the others not', async t => {
  const h = await appOnFile(t, '[server]\nport = 8080\n')
  const restartLines = (): string[] => h.logs.lines.filter(l => l.msg?.includes('restart needed')).map(l => String(l.option))
  let reloaded = h.nextReload()
  await writeFile(h.file, '[server]\nport = 8080\ntrust_proxy = true\nthrottle_store = redis\n[notification]\nbackend = redis\nredis_url = redis://127.0.0.1:1/0\n[storage]\nbackend = redis\n')
  await reloaded
  t.same(restartLines().sort(), ['[notification] backend, redis_url', '[server] throttle_store, redis_url', '[server] trust_proxy', '[storage] backend, redis_url (for the Service API)'])
  // Another edit elsewhere: the same differences are not reported again.
  reloaded = h.nextReload()
  await writeFile(h.file, '[server]\nport = 8080\nrealm = R\ntrust_proxy = true\nthrottle_store = redis\n[notification]\nbackend = redis\nredis_url = redis://127.0.0.1:1/0\n[storage]\nbackend = redis\n')
  await reloaded
  t.equal(restartLines().length, 4)
})

t.test('requests in flight during 20 reloads only ever see 200 or the expected 401', async t => {
  // Two files that differ elsewhere but both accept the caller; a third caller is always refused
  // (failure throttling set out of reach, as all three callers share one IP).
  const LIMITS = 'max_failures = 999999\nmax_failures_per_ip = 999999\n'
  const A = '[server]\n' + LIMITS + 'username = default\npassword = first-secret\nrealm = A\n[service.x]\nusername = x\npassword = one\n_type = builtin\n_service = match-interaction\n'
  const B = '[server]\n' + LIMITS + 'username = default\npassword = first-secret\nrealm = B\n[service.x]\nusername = x\npassword = two\n_type = builtin\n_service = match-interaction\n'
  const h = await appOnFile(t, A)
  await h.app.listen({ port: 0, host: '127.0.0.1' })
  const url = `http://127.0.0.1:${(h.app.server.address() as { port: number }).port}/genesys/1/node`
  const load = { running: true }
  const statuses = new Map<string, number>()
  const client = async (headers: Record<string, string>, label: string): Promise<void> => {
    while (load.running) {
      const res = await fetch(url, { headers })
      await res.arrayBuffer()
      const key = `${label}:${res.status}`
      statuses.set(key, (statuses.get(key) ?? 0) + 1)
    }
  }
  const clients = [client(first, 'good'), client(first, 'good'), client({ authorization: basic('default', 'nope') }, 'bad')]
  for (let i = 0; i < 20; i++) {
    const reloaded = h.nextReload()
    if (i % 2 === 0) {
      await writeFile(`${h.file}.tmp`, i % 4 === 0 ? B : A)
      await rename(`${h.file}.tmp`, h.file)
    } else {
      await writeFile(h.file, i % 4 === 1 ? A : B)
    }
    await reloaded
  }
  load.running = false
  await Promise.all(clients)
  t.same([...statuses.keys()].sort(), ['bad:401', 'good:200'], `statuses seen: ${JSON.stringify(Object.fromEntries(statuses))}`)
})

t.test('no secret reaches a log line through reloads, rejections and denials', async t => {
  const h = await appOnFile(t, V1)
  await h.app.inject({ url: '/genesys/1/node', headers: { authorization: basic('default', 'wrong-guess') } })
  await h.app.inject({ url: '/genesys/1/node', headers: first })
  let event = h.nextReload()
  await writeFile(h.file, V2)
  await event
  const rejected = h.nextReloadError()
  await writeFile(h.file, '[server]\nusername = default\npassword second-secret\n')
  await rejected
  event = h.nextReload()
  await writeFile(h.file, V1)
  await event
  t.ok(h.logs.raw.length >= 3, 'something was logged')
  for (const secret of ['first-secret', 'second-secret', 'wrong-guess', basic('default', 'first-secret').slice(6)]) {
    t.notOk(h.logs.contains(secret), `no log line holds ${secret}`)
  }
})
