import { connect } from 'node:net'
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { gmsGate } from '../plugins/gate.js'
import { appOnText, basic } from './helpers/app.js'

const CHALLENGE = 'Basic realm="Genesys Application Configuration Needed", charset="UTF-8"'

// The example: GMS precedence across every kind of section.
const EXAMPLE = `
[server]
password = s3cret
username = default

[storage]
username = store

[service.request-interaction]
username = genesys
password = genesys
_type = builtin
_service = match-interaction
`

async function listening (t: Test, ini: string): Promise<string> {
  const { app } = await appOnText(t, ini)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  return `http://127.0.0.1:${port}`
}

t.test('over a real socket, each route asks for the credentials GMS precedence gives it', async t => {
  const base = await listening(t, EXAMPLE)
  const expectations: Array<[string, [string, string], Array<[string, string]>]> = [
    ['/genesys/1/storage/no-such-id', ['store', 's3cret'], [['default', 's3cret'], ['genesys', 'genesys']]],
    ['/genesys/1/notification/subscription/x', ['default', 's3cret'], [['store', 's3cret']]],
    ['/genesys/1/service/request-interaction', ['genesys', 'genesys'], [['default', 's3cret']]],
    ['/genesys/1/node', ['default', 's3cret'], [['genesys', 'genesys']]],
    ['/genesys/1/anything/else', ['default', 's3cret'], [['store', 's3cret']]]
  ]
  for (const [path, [user, pass], refused] of expectations) {
    const denied = await fetch(base + path)
    t.equal(denied.status, 401, `${path} without credentials`)
    t.equal(denied.headers.get('www-authenticate'), CHALLENGE)
    t.equal(denied.headers.get('content-length'), '0')
    t.equal(await denied.text(), '')
    for (const [u, p] of refused) {
      t.equal((await fetch(base + path, { headers: { authorization: basic(u, p) } })).status, 401, `${path} refuses ${u}`)
    }
    const allowed = await fetch(base + path, { headers: { authorization: basic(user, pass) } })
    t.not(allowed.status, 401, `${path} accepts ${user}`)
  }
})

t.test('an open section needs no credentials while a protected one does', async t => {
  const base = await listening(t, '[service.request-interaction]\nusername = genesys\npassword = genesys\n_type = builtin\n_service = match-interaction\n')
  t.equal((await fetch(`${base}/genesys/1/node`)).status, 200)
  t.equal((await fetch(`${base}/genesys/1/storage/x`)).status, 404)
  t.equal((await fetch(`${base}/genesys/1/service/request-interaction`)).status, 401)
})

t.test('an authenticated request under a service prefix with no route answers a JSON 404', async t => {
  const { app } = await appOnText(t, EXAMPLE)
  const res = await app.inject({ url: '/genesys/1/service/request-interaction/nothing-here', headers: { authorization: basic('genesys', 'genesys') } })
  t.equal(res.statusCode, 404)
  t.match(res.headers['content-type'], /application\/json/)
  t.equal(res.json().statusCode, 404)
})

t.test('a 404 under a protected prefix reveals nothing without credentials', async t => {
  const { app } = await appOnText(t, EXAMPLE)
  const res = await app.inject({ url: '/genesys/1/storage/does/not/exist' })
  t.equal(res.statusCode, 401)
  t.equal(res.body, '')
})

t.test('the Node API answers with its identity and never a secret', async t => {
  const { app } = await appOnText(t, EXAMPLE)
  const res = await app.inject({ url: '/genesys/1/node', headers: { authorization: basic('default', 's3cret') } })
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.match(body, { id: String, version: String, uptime: Number, optionsHash: /^[0-9a-f]{16}$/ })
  t.notMatch(res.body, /s3cret|genesys/)
})

t.test('the node status answers ONLINE as text/plain behind [server]', async t => {
  const { app } = await appOnText(t, EXAMPLE)
  t.equal((await app.inject({ url: '/genesys/1/admin/node/status' })).statusCode, 401)
  const res = await app.inject({ url: '/genesys/1/admin/node/status', headers: { authorization: basic('default', 's3cret') } })
  t.equal(res.statusCode, 200)
  t.equal(res.body, 'ONLINE')
  t.match(res.headers['content-type'], /^text\/plain/)
})

t.test('/health is open even when [server] has a password, and says nothing of the options', async t => {
  const { app } = await appOnText(t, EXAMPLE)
  const res = await app.inject({ url: '/health' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { status: 'ok' })
})

t.test('the realm in the challenge comes from the section, escaped', async t => {
  const { app } = await appOnText(t, '[server]\nusername = u\npassword = p\nrealm = Main\n[storage]\nrealm = "Store \\"A\\""\n')
  t.equal((await app.inject({ url: '/genesys/1/node' })).headers['www-authenticate'], 'Basic realm="Main", charset="UTF-8"')
  t.equal((await app.inject({ url: '/genesys/1/storage/x' })).headers['www-authenticate'], 'Basic realm="Store \\"A\\"", charset="UTF-8"')
})

const malformed: Record<string, string> = {
  'no scheme': Buffer.from('default:s3cret').toString('base64'),
  'a Bearer token': 'Bearer abc',
  'Basic alone': 'Basic',
  'bad base64': 'Basic !!!!',
  'no colon': `Basic ${Buffer.from('defaults3cret').toString('base64')}`,
  'a control character': `Basic ${Buffer.from('default:s3c\u0001ret').toString('base64')}`,
  'an 8 KB header': `Basic ${'QUFB'.repeat(2048)}`,
  'non-UTF-8 credentials': `Basic ${Buffer.from([0x64, 0x3a, 0xc3, 0x28]).toString('base64')}`
}
t.test('malformed Authorization headers get the same 401 challenge, never a 500', async t => {
  const { app } = await appOnText(t, EXAMPLE)
  for (const [name, header] of Object.entries(malformed)) {
    const res = await app.inject({ url: '/genesys/1/node', headers: { authorization: header } })
    t.equal(res.statusCode, 401, name)
    t.equal(res.headers['www-authenticate'], CHALLENGE, name)
    t.equal(res.body, '', name)
  }
})

t.test('raw non-ASCII bytes in the header over a socket get a 401, not a 500', async t => {
  const base = new URL(await listening(t, EXAMPLE))
  const socket = connect(Number(base.port), base.hostname)
  socket.write(Buffer.concat([
    Buffer.from('GET /genesys/1/node HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Basic '),
    Buffer.from([0xff, 0xfe, 0xc3, 0x28]),
    Buffer.from('\r\n\r\n')
  ]))
  const chunks: Buffer[] = []
  for await (const chunk of socket) chunks.push(chunk as Buffer)
  t.match(Buffer.concat(chunks).toString('latin1'), /^HTTP\/1\.1 401 /)
})

t.test('another app can put its own routes behind the gate with the exported plugin', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(gmsGate, { options: '[server]\nusername = a\npassword = b\n[storage]\nusername = s\npassword = t\n' })
  app.get('/genesys/1/mine', async () => ({ mine: true }))
  app.get('/genesys/1/storage/:id', { config: { gmsSection: 'storage' } }, async (req) => ({ id: (req.params as { id: string }).id, user: req.gmsUser }))
  t.equal((await app.inject({ url: '/genesys/1/mine' })).statusCode, 401)
  t.same((await app.inject({ url: '/genesys/1/mine', headers: { authorization: basic('a', 'b') } })).json(), { mine: true })
  const res = await app.inject({ url: '/genesys/1/storage/42', headers: { authorization: basic('s', 't') } })
  t.same(res.json(), { id: '42', user: 's' })
})

t.test('a route declares its section, so a percent-encoded path cannot reach it under another policy', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  // [server] open, [storage] protected: a path the router decodes to a storage route must still ask for storage credentials.
  await app.register(gmsGate, { options: '[storage]\nusername = s\npassword = t\n' })
  app.get('/genesys/1/storage/:id', { config: { gmsSection: 'storage' } }, async () => ({ ok: true }))
  for (const url of ['/genesys/1/storage/x', '/genesys/1/stor%61ge/x', '/genesys/1/storage/%2e%2e']) {
    const res = await app.inject({ url })
    t.ok(res.statusCode === 401 || res.statusCode === 404, `${url} is refused or unknown (${res.statusCode})`)
    t.not(res.statusCode, 200, url)
  }
})

t.test('the plugin refuses to start without options', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => { await app.register(gmsGate, {}) }, /needs \{ configPath \} or \{ options \}/)
})

t.test('a valid header in another form than the canonical one still passes (scheme case, extra spaces)', async t => {
  const { app } = await appOnText(t, EXAMPLE)
  const token = Buffer.from('default:s3cret').toString('base64')
  for (const header of [`basic ${token}`, `BASIC ${token}`, `Basic   ${token}`]) {
    t.equal((await app.inject({ url: '/genesys/1/node', headers: { authorization: header } })).statusCode, 200, header.slice(0, 8))
  }
})

t.test('while counters are active, a known-good header does not wait behind the same client\'s slow hash check', async t => {
  const { scryptHash } = await import('./helpers/hashes.js')
  // A costly hash (about 100 ms to verify) on [storage]; a plaintext password on [server].
  const ini = `[server]\nusername = admin\npassword = adm1n-pw\nplaintext_passwords = allow\nmax_failures = 999\nmax_failures_per_ip = 999\n[storage]\nusername = store\npassword = ${scryptHash('st0re-pw', 15)}\n`
  const { app } = await appOnText(t, ini)
  // One failure in the window: the throttle is active, so every request peeks at the counters.
  t.equal((await app.inject({ url: '/genesys/1/node', headers: { authorization: basic('admin', 'not-the-pw') } })).statusCode, 401)
  let slowDone = false
  const slow = app.inject({ url: '/genesys/1/storage/x', headers: { authorization: basic('store', 'not-the-pw') } }).then(res => { slowDone = true; return res })
  // Let the slow check start first, so it holds this client's queue.
  await new Promise(resolve => setImmediate(resolve))
  const good = await app.inject({ url: '/genesys/1/node', headers: { authorization: basic('admin', 'adm1n-pw') } })
  t.equal(good.statusCode, 200)
  t.notOk(slowDone, 'answered while the hash check of the same client was still running')
  t.equal((await slow).statusCode, 401)
})

t.test('while throttled, the right password is refused no sooner than a wrong one: both wait for the client\'s queue', async t => {
  const { scryptHash } = await import('./helpers/hashes.js')
  const ini = `[server]\nusername = admin\npassword = adm1n-pw\nplaintext_passwords = allow\nmax_failures = 2\nmax_failures_per_ip = 999\n[storage]\nusername = store\npassword = ${scryptHash('st0re-pw', 15)}\n`
  const { app } = await appOnText(t, ini)
  const as = (user: string, pw: string, url = '/genesys/1/node') => app.inject({ url, headers: { authorization: basic(user, pw) } })
  t.equal((await as('admin', 'guess-1')).statusCode, 401)
  t.equal((await as('admin', 'guess-2')).statusCode, 401)
  t.equal((await as('admin', 'guess-3')).statusCode, 429, 'admin is throttled')
  // A slow hash check of another username holds this client's queue.
  let slowDone = false
  const slow = as('store', 'not-the-pw', '/genesys/1/storage/x').then(res => { slowDone = true; return res })
  await new Promise(resolve => setImmediate(resolve))
  const right = await as('admin', 'adm1n-pw')
  t.equal(right.statusCode, 429)
  t.ok(slowDone, 'the 429 came after the slow check ahead of it, as for a wrong guess')
  t.equal((await slow).statusCode, 401)
})
