import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import { appOnText, basic } from './helpers/app.js'
import { freePort } from './helpers/redis.js'

interface Seen { method: string, url: string, headers: Record<string, unknown>, body: unknown }

/** A real upstream on a free port that records what reaches it. */
async function startUpstream (t: Tap): Promise<{ url: string, seen: Seen[], app: FastifyInstance }> {
  const app = Fastify()
  const seen: Seen[] = []
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body))
  app.all('/*', async (request, reply) => {
    seen.push({ method: request.method, url: request.url, headers: request.headers, body: request.body })
    if (request.url.startsWith('/cb/slow')) {
      await new Promise(resolve => setTimeout(resolve, 2000))
    }
    reply.header('x-upstream', 'yes').code(201)
    return { ok: true }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }
  return { url: `http://127.0.0.1:${port}`, seen, app }
}
type Tap = { teardown (fn: () => unknown): void }

const config = (upstream: string) => `[service.cb]
username = caller
password = caller-pass
_type = http
_service = ${upstream}/cb
_upstream = ors
_timeout = 0.3
_user_header = X-GMS-User

[service.plain]
_type = http
_service = ${upstream}/plain

[dfm.ors]
username = gms
password = dfm-secret
maxage = 60
maxstale = 5
`
const CALLER = basic('caller', 'caller-pass')

t.test('method, sub-path, query and body reach the upstream, and its answer comes back', async t => {
  const upstream = await startUpstream(t)
  const { app } = await appOnText(t, config(upstream.url))
  const res = await app.inject({
    method: 'PUT',
    url: '/genesys/1/service/cb/orders/7?x=1&y=two',
    headers: { authorization: CALLER, 'content-type': 'application/json' },
    payload: { hello: 'world' }
  })
  t.equal(res.statusCode, 201)
  t.equal(res.headers['x-upstream'], 'yes')
  t.same(res.json(), { ok: true })
  t.match(upstream.seen[0], { method: 'PUT', url: '/cb/orders/7?x=1&y=two', body: { hello: 'world' } })
})

t.test('a POST to the service itself is forwarded to the _service URL', async t => {
  const upstream = await startUpstream(t)
  const { app } = await appOnText(t, config(upstream.url))
  const res = await app.inject({
    method: 'POST', url: '/genesys/1/service/plain', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'a=1&b=2'
  })
  t.equal(res.statusCode, 201)
  t.match(upstream.seen[0], { method: 'POST', url: '/plain', body: 'a=1&b=2' })
})

t.test('the caller\'s Authorization never reaches the upstream; the DFM credentials do', async t => {
  const upstream = await startUpstream(t)
  const { app, logs } = await appOnText(t, config(upstream.url))
  await app.inject({ method: 'GET', url: '/genesys/1/service/cb', headers: { authorization: CALLER } })
  const headers = upstream.seen[0]!.headers
  t.equal(headers.authorization, basic('gms', 'dfm-secret'))
  t.equal(headers['cache-control'], 'max-age=60, max-stale=5')
  t.notOk(logs.contains('dfm-secret'), 'the DFM password is in no log line')
})

t.test('a service without _upstream sends no Authorization at all', async t => {
  const upstream = await startUpstream(t)
  const { app } = await appOnText(t, config(upstream.url))
  await app.inject({ method: 'GET', url: '/genesys/1/service/plain', headers: { authorization: CALLER } })
  t.notOk('authorization' in upstream.seen[0]!.headers)
})

t.test('the authenticated user goes in _user_header, and a caller cannot forge it', async t => {
  const upstream = await startUpstream(t)
  const { app } = await appOnText(t, config(upstream.url))
  await app.inject({ method: 'GET', url: '/genesys/1/service/cb', headers: { authorization: CALLER, 'x-gms-user': 'root' } })
  t.equal(upstream.seen[0]!.headers['x-gms-user'], 'caller')
})

t.test('nothing is forwarded without valid credentials', async t => {
  const upstream = await startUpstream(t)
  const { app } = await appOnText(t, config(upstream.url))
  const res = await app.inject({ method: 'POST', url: '/genesys/1/service/cb', headers: { authorization: basic('caller', 'wrong') }, payload: { a: 1 } })
  t.equal(res.statusCode, 401)
  t.equal(upstream.seen.length, 0)
})

t.test('an upstream that is down answers 502 with a JSON error', async t => {
  const port = await freePort()
  const { app } = await appOnText(t, config(`http://127.0.0.1:${port}`))
  const res = await app.inject({ method: 'POST', url: '/genesys/1/service/cb', headers: { authorization: CALLER }, payload: { a: 1 } })
  t.equal(res.statusCode, 502)
  t.match(res.json(), { code: 'GMS_GATE_UPSTREAM_UNAVAILABLE', message: /\[service.cb\]/ })
})

t.test('an upstream slower than _timeout answers 504 with a JSON error', async t => {
  const upstream = await startUpstream(t)
  const { app } = await appOnText(t, config(upstream.url))
  const started = Date.now()
  const res = await app.inject({ method: 'GET', url: '/genesys/1/service/cb/slow', headers: { authorization: CALLER } })
  t.equal(res.statusCode, 504)
  t.match(res.json(), { code: 'GMS_GATE_UPSTREAM_TIMEOUT' })
  t.ok(Date.now() - started < 1500, 'answered at _timeout, not when the upstream finished')
})

t.test('forwarding works over a real socket too', async t => {
  const upstream = await startUpstream(t)
  const { app } = await appOnText(t, config(upstream.url))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const res = await fetch(`http://127.0.0.1:${port}/genesys/1/service/cb/x?q=1`, {
    method: 'POST', headers: { authorization: CALLER, 'content-type': 'text/plain' }, body: 'raw body'
  })
  t.equal(res.status, 201)
  t.match(upstream.seen[0], { method: 'POST', url: '/cb/x?q=1', body: 'raw body' })
})

t.test('an upstream that is down answers 502 over a real socket while the caller sends a body', async t => {
  const port = await freePort()
  const { app } = await appOnText(t, config(`http://127.0.0.1:${port}`))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const gate = (app.server.address() as { port: number }).port
  const res = await fetch(`http://127.0.0.1:${gate}/genesys/1/service/cb`, {
    method: 'POST', headers: { authorization: CALLER, 'content-type': 'text/plain' }, body: 'x'.repeat(100_000)
  })
  t.equal(res.status, 502)
  t.match(await res.json(), { code: 'GMS_GATE_UPSTREAM_UNAVAILABLE' })
})
