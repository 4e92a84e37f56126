import { once } from 'node:events'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import type { DeadLettered, Delivered } from '../services/notification/delivery.js'
import type { Dispatched } from '../services/notification/plugin.js'
import { appOnText, basic, type LogCapture } from './helpers/app.js'
import { startReceiver } from './helpers/receiver.js'
import { KEY_PREFIX } from '../services/notification/redis-store.js'
import { hasRedisServer, NO_REDIS_REASON, startRedis, untilExpired, type RedisProcess } from './helpers/redis.js'
import { openStream } from './helpers/sse.js'

const API = '/genesys/1/notification'
const JSON_HEADERS = { 'content-type': 'application/json' }
// Tiny backoffs so retries take milliseconds.
const FAST_RETRY = 'retry_attempts = 3\nretry_initial_ms = 1\nretry_max_ms = 4\n'

interface Harness { app: FastifyInstance, logs: LogCapture }

const post = (app: FastifyInstance, path: string, body: unknown) =>
  app.inject({ method: 'POST', url: API + path, headers: JSON_HEADERS, payload: JSON.stringify(body) })

async function subscribe (app: FastifyInstance, body: Record<string, unknown>): Promise<string> {
  const res = await post(app, '/subscription', { subscriberId: 'sub-1', ...body })
  if (res.statusCode !== 200) throw new Error(`subscribe answered ${res.statusCode}: ${res.body}`)
  return res.json().id
}

const httpcb = (deviceId: string, filter: string, extra: Record<string, unknown> = {}) =>
  ({ filter, notificationDetails: { type: 'httpcb', deviceId }, ...extra })

function nextEvent<T> (app: FastifyInstance, name: 'delivered' | 'dead-letter' | 'dispatched', eventId?: () => string): Promise<T> {
  return new Promise(resolve => {
    const on = (payload: T & { eventId: string }): void => {
      if (eventId !== undefined && payload.eventId !== eventId()) return
      app.gmsNotification.events.off(name, on)
      resolve(payload)
    }
    app.gmsNotification.events.on(name, on)
  })
}

async function listen (app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  return `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
}

function suite (backend: 'memory' | 'redis'): void {
  t.test(`${backend} backend`, { skip: backend === 'redis' && !hasRedisServer ? NO_REDIS_REASON : false }, async t => {
    let redis: RedisProcess | undefined
    let flusher: Redis | undefined
    if (backend === 'redis') {
      redis = await startRedis()
      flusher = new Redis(redis.url)
      t.teardown(async () => { flusher!.disconnect(); await redis!.kill() })
    }
    const backendLines = (): string => backend === 'redis' ? `backend = redis\nredis_url = ${redis!.url}\n` : ''
    async function harness (t: Test, extra = ''): Promise<Harness> {
      await flusher?.flushall()
      // Options in `extra` replace the fast-retry defaults of the same name.
      const given = new Set(extra.split('\n').map(line => line.split('=')[0]!.trim()))
      const defaults = FAST_RETRY.split('\n').filter(line => !given.has(line.split('=')[0]!.trim())).join('\n')
      return appOnText(t, `[notification]\n${backendLines()}${defaults}\n${extra}`)
    }

    t.test('a subscription is answered with an id and read back without its authorization', async t => {
      const { app } = await harness(t)
      const id = await subscribe(app, httpcb('http://127.0.0.1:1/cb', 'ors.contact.1', { authorization: 'dXNlcjpwYXNz', providerName: 'p', expire: 60 }))
      const res = await app.inject({ url: `${API}/subscription/${id}` })
      t.equal(res.statusCode, 200)
      t.match(res.json(), { id, subscriberId: 'sub-1', providerName: 'p', filter: 'ors.contact.1', expire: 60, notificationDetails: { type: 'httpcb', deviceId: 'http://127.0.0.1:1/cb' } })
      t.notOk('authorization' in res.json())
      t.notMatch(res.body, /dXNlcjpwYXNz/)
    })

    t.test('a subscription without expire lives default_expiration seconds', async t => {
      const { app } = await harness(t, 'default_expiration = 45\n')
      const id = await subscribe(app, httpcb('http://127.0.0.1:1/cb', 'x'))
      t.equal((await app.inject({ url: `${API}/subscription/${id}` })).json().expire, 45)
    })

    t.test('an unsubscribed subscription is gone and a second delete answers 404', async t => {
      const { app } = await harness(t)
      const id = await subscribe(app, httpcb('http://127.0.0.1:1/cb', 'x'))
      t.equal((await app.inject({ method: 'DELETE', url: `${API}/subscription/${id}` })).statusCode, 204)
      t.equal((await app.inject({ url: `${API}/subscription/${id}` })).statusCode, 404)
      const again = await app.inject({ method: 'DELETE', url: `${API}/subscription/${id}` })
      t.equal(again.statusCode, 404)
      t.equal(again.json().code, 'GMS_GATE_NOT_FOUND')
      t.equal((await post(app, '/publish', { tag: 'x', message: 'm' })).json().matched, 0)
    })

    t.test('an unknown subscription answers 404 JSON', async t => {
      const { app } = await harness(t)
      const res = await app.inject({ url: `${API}/subscription/no-such-id` })
      t.equal(res.statusCode, 404)
      t.match(res.json(), { statusCode: 404, message: /no-such-id/ })
    })

    t.test('a subscription expires after its expire seconds', async t => {
      const { app } = await harness(t)
      const id = await subscribe(app, httpcb('http://127.0.0.1:1/cb', 'x', { expire: 1 }))
      t.equal((await app.inject({ url: `${API}/subscription/${id}` })).statusCode, 200)
      // Poll for the expiry (nothing announces it); bounded so a subscription that never expires fails.
      const deadline = Date.now() + 3000
      let status = 200
      while (status === 200 && Date.now() < deadline) {
        await new Promise(resolve => setTimeout(resolve, 100))
        status = (await app.inject({ url: `${API}/subscription/${id}` })).statusCode
      }
      t.equal(status, 404)
      t.equal((await post(app, '/publish', { tag: 'x', message: 'm' })).json().matched, 0)
    })

    t.test('subscriptionCount goes up on subscribe, down on unsubscribe and on expiry', async t => {
      const { app } = await harness(t)
      const count = () => app.gmsNotification.subscriptionCount()
      t.equal(await count(), 0)
      const short = await subscribe(app, httpcb('http://127.0.0.1:1/cb', 'x', { expire: 1 }))
      const wild = await subscribe(app, { filter: 'ors.*', notificationDetails: { type: 'sse' } })
      await subscribe(app, httpcb('http://127.0.0.1:1/cb', 'y'))
      t.equal(await count(), 3)
      t.equal((await app.inject({ method: 'DELETE', url: `${API}/subscription/${wild}` })).statusCode, 204)
      t.equal(await count(), 2)
      if (backend === 'redis') {
        await untilExpired(flusher!, `${KEY_PREFIX}sub:${short}`)
      } else {
        // Nothing announces a memory expiry: wait out the time left.
        const expiresAt = Date.parse((await app.inject({ url: `${API}/subscription/${short}` })).json().expiresAt)
        await new Promise(resolve => setTimeout(resolve, expiresAt - Date.now() + 5))
      }
      t.equal(await count(), 1)
    })

    t.test('publish answers how many subscriptions the tag matched: exact, prefix and *', async t => {
      const { app } = await harness(t)
      const cb = 'http://127.0.0.1:1/cb'
      await subscribe(app, httpcb(cb, 'ors.contact.1'))
      await subscribe(app, httpcb(cb, 'ors.contact.*'))
      await subscribe(app, httpcb(cb, '*'))
      await subscribe(app, httpcb(cb, 'ors.other'))
      const count = async (tag: string): Promise<number> => (await post(app, '/publish', { tag, message: 'm' })).json().matched
      t.equal(await count('ors.contact.1'), 3)
      t.equal(await count('ors.contact.2'), 2)
      t.equal(await count('ors.contact'), 1)
      t.equal(await count('ors.other'), 2)
    })

    t.test('a callback gets the message as the POST body with the subscription authorization as Basic', async t => {
      const { app } = await harness(t)
      const rx = await startReceiver(t)
      await subscribe(app, httpcb(`${rx.base}/cb`, 'tag.a', { authorization: Buffer.from('demo:pw').toString('base64') }))
      const pub = await post(app, '/publish', { tag: 'tag.a', message: 'agent ready' })
      t.same(pub.json().matched, 1)
      const call = await rx.call('/cb')
      t.equal(call.body, 'agent ready')
      t.equal(call.headers.authorization, basic('demo', 'pw'))
      t.match(call.headers['content-type'], /^text\/plain/)
    })

    t.test('a callback answering 500 is retried until it answers 200', async t => {
      const { app } = await harness(t)
      const rx = await startReceiver(t)
      rx.answer('/cb', 500, 500, 200)
      await subscribe(app, httpcb(`${rx.base}/cb`, 'tag.r'))
      const delivered = nextEvent<Delivered>(app, 'delivered')
      await post(app, '/publish', { tag: 'tag.r', message: 'm' })
      t.equal((await delivered).attempts, 3)
      t.equal(rx.callsTo('/cb').length, 3)
    })

    t.test('a callback that keeps failing is given up after retry_attempts with a dead-letter warning and no secret', async t => {
      const { app, logs } = await harness(t)
      const rx = await startReceiver(t)
      rx.answer('/cb?token=abc', 503)
      const secret = Buffer.from('demo:topsecret').toString('base64')
      await subscribe(app, httpcb(`${rx.base}/cb?token=abc`, 'tag.d', { authorization: secret }))
      const dead = nextEvent<DeadLettered>(app, 'dead-letter')
      await post(app, '/publish', { tag: 'tag.d', message: 'm' })
      t.match(await dead, { attempts: 3, reason: 'HTTP 503' })
      t.equal(rx.callsTo('/cb?token=abc').length, 3)
      const line = logs.lines.find(l => l.msg?.includes('dead-lettered'))
      t.match(line, { level: 40, attempts: 3, tag: 'tag.d', target: `${rx.base}/cb` })
      t.notOk(logs.contains(secret), 'the authorization is never logged')
      t.notOk(logs.contains('token=abc'), 'the callback query string is never logged')
    })

    t.test('a hanging receiver does not delay delivery to another subscriber', async t => {
      const { app } = await harness(t, 'delivery_timeout_ms = 60000\n')
      const rx = await startReceiver(t)
      rx.answer('/hang', 'hang')
      await subscribe(app, httpcb(`${rx.base}/hang`, 'tag.h'))
      await subscribe(app, httpcb(`${rx.base}/ok`, 'tag.h'))
      const started = Date.now()
      const delivered = nextEvent<Delivered>(app, 'delivered')
      const pub = await post(app, '/publish', { tag: 'tag.h', message: 'm' })
      t.equal(pub.json().matched, 2)
      t.equal((await delivered).attempts, 1)
      await rx.call('/hang')
      t.equal(app.gmsNotification.delivery.inFlight, 1, 'the hanging delivery is still waiting')
      t.ok(Date.now() - started < 5000)
    })

    t.test('an attempt with no answer within delivery_timeout_ms counts as a failure', async t => {
      const { app } = await harness(t, 'delivery_timeout_ms = 50\nretry_attempts = 1\n')
      const rx = await startReceiver(t)
      rx.answer('/hang', 'hang')
      await subscribe(app, httpcb(`${rx.base}/hang`, 'tag.t'))
      const dead = nextEvent<DeadLettered>(app, 'dead-letter')
      await post(app, '/publish', { tag: 'tag.t', message: 'm' })
      t.match(await dead, { attempts: 1, reason: /no answer within 50 ms/ })
    })

    t.test('customhttp posts {deviceId, message} to customhttp_url', async t => {
      const rx = await startReceiver(t)
      const { app } = await harness(t, `customhttp_url = ${rx.base}/custom\n`)
      await subscribe(app, { filter: 'tag.c', notificationDetails: { type: 'customhttp', deviceId: 'device-42' } })
      await post(app, '/publish', { tag: 'tag.c', message: 'hi' })
      const call = await rx.call('/custom')
      t.same(JSON.parse(call.body), { deviceId: 'device-42', message: 'hi' })
      t.match(call.headers['content-type'], /^application\/json/)
    })

    t.test('an SSE stream receives published messages in order', async t => {
      const { app } = await harness(t)
      const base = await listen(app)
      const id = await subscribe(app, { filter: 'chat.*', notificationDetails: { type: 'sse' } })
      const stream = await openStream(`${base}${API}/stream/${id}`)
      t.teardown(() => stream.close())
      t.match(stream.response.headers['content-type'], /^text\/event-stream/)
      for (const message of ['one', 'two', 'three\nlines']) await post(app, '/publish', { tag: 'chat.1', message })
      const got = [await stream.next(), await stream.next(), await stream.next()]
      t.same(got.map(e => JSON.parse(e.data).message), ['one', 'two', 'three\nlines'])
      t.same(got.map(e => e.event), ['notification', 'notification', 'notification'])
    })

    t.test('a disconnected stream is removed from the hub', async t => {
      const { app } = await harness(t)
      const base = await listen(app)
      const id = await subscribe(app, { filter: 'chat.x', notificationDetails: { type: 'sse' } })
      const stream = await openStream(`${base}${API}/stream/${id}`)
      await post(app, '/publish', { tag: 'chat.x', message: 'm' })
      await stream.next()
      t.equal(app.gmsNotification.streams.count(id), 1)
      const closed = once(app.gmsNotification.streams, 'closed')
      stream.close()
      t.same(await closed, [id])
      t.equal(app.gmsNotification.streams.count(id), 0)
      const dispatched = nextEvent<Dispatched>(app, 'dispatched')
      await post(app, '/publish', { tag: 'chat.x', message: 'after' })
      t.equal((await dispatched).streamed, 0)
    })

    t.test('unsubscribing ends the open stream', async t => {
      const { app } = await harness(t)
      const base = await listen(app)
      const id = await subscribe(app, { filter: 'chat.u', notificationDetails: { type: 'sse' } })
      const stream = await openStream(`${base}${API}/stream/${id}`)
      t.equal((await app.inject({ method: 'DELETE', url: `${API}/subscription/${id}` })).statusCode, 204)
      await stream.ended
      t.pass('the stream ended')
    })

    t.test('a stream for an unknown subscription answers 404 and for a callback subscription 400', async t => {
      const { app } = await harness(t)
      t.equal((await app.inject({ url: `${API}/stream/nope` })).statusCode, 404)
      const id = await subscribe(app, httpcb('http://127.0.0.1:1/cb', 'x'))
      const res = await app.inject({ url: `${API}/stream/${id}` })
      t.equal(res.statusCode, 400)
      t.match(res.json().message, /notificationDetails\.type/)
    })

    t.test('a callback outside callback_allow is refused with a 400 that says why', async t => {
      const { app } = await harness(t)
      const res = await post(app, '/subscription', { subscriberId: 's', ...httpcb('http://10.1.2.3/cb', 'x') })
      t.equal(res.statusCode, 400)
      t.match(res.json().message, /notificationDetails\.deviceId refused: address 10\.1\.2\.3 is outside \[notification\] callback_allow/)
      const metadata = await post(app, '/subscription', { subscriberId: 's', ...httpcb('http://169.254.169.254/latest', 'x') })
      t.equal(metadata.statusCode, 400)
    })

    t.test('callback_allow can open a network', async t => {
      const { app } = await harness(t, 'callback_allow = 10.0.0.0/8\n')
      t.equal((await post(app, '/subscription', { subscriberId: 's', ...httpcb('http://10.1.2.3/cb', 'x') })).statusCode, 200)
      t.equal((await post(app, '/subscription', { subscriberId: 's', ...httpcb('http://127.0.0.1/cb', 'x') })).statusCode, 400)
    })

    t.test('max_subscriptions refuses one more with 429', async t => {
      const { app } = await harness(t, 'max_subscriptions = 2\n')
      await subscribe(app, httpcb('http://127.0.0.1:1/cb', 'x'))
      await subscribe(app, httpcb('http://127.0.0.1:1/cb', 'x'))
      const res = await post(app, '/subscription', { subscriberId: 's', ...httpcb('http://127.0.0.1:1/cb', 'x') })
      t.equal(res.statusCode, 429)
      t.match(res.json().message, /max_subscriptions \(2\)/)
    })

    t.test('a body that is not JSON answers 415', async t => {
      const { app } = await harness(t)
      for (const headers of [{ 'content-type': 'text/plain' }, { 'content-type': 'application/x-www-form-urlencoded' }, {}]) {
        const res = await app.inject({ method: 'POST', url: `${API}/publish`, headers, payload: 'tag=x' })
        t.equal(res.statusCode, 415, JSON.stringify(headers))
        t.equal(res.json().code, 'GMS_GATE_UNSUPPORTED_MEDIA_TYPE')
      }
    })

    t.test('bad subscribe and publish bodies answer 400 naming the field', async t => {
      const { app } = await harness(t, 'max_message_bytes = 10\n')
      const cases: Array<[string, unknown, RegExp]> = [
        ['/subscription', { filter: 'x', notificationDetails: { type: 'sse' } }, /^subscriberId is required/],
        ['/subscription', { subscriberId: 's', notificationDetails: { type: 'sse' } }, /^filter is required/],
        ['/subscription', { subscriberId: 's', filter: 'x' }, /^notificationDetails is required/],
        ['/subscription', { subscriberId: 's', filter: 'x', notificationDetails: { type: 'ios' } }, /^notificationDetails\.type "ios" is not enabled/],
        ['/subscription', { subscriberId: 's', filter: 'x', notificationDetails: { type: 'httpcb' } }, /^notificationDetails\.deviceId is required/],
        ['/subscription', { subscriberId: 's', filter: 'x', notificationDetails: { type: 'httpcb', deviceId: 'ftp://x' } }, /^notificationDetails\.deviceId must be an http/],
        ['/subscription', { subscriberId: 's', filter: 'x', notificationDetails: { type: 'sse' }, expire: -1 }, /^expire must be/],
        ['/subscription', { subscriberId: 's', filter: 'x', notificationDetails: { type: 'sse' }, authorization: 'not base64!' }, /^authorization must be/],
        ['/subscription', [1, 2], /the body must be a JSON object/],
        ['/publish', { message: 'm' }, /^tag is required/],
        ['/publish', { tag: 't' }, /^message is required/],
        ['/publish', { tag: 't', message: { a: 1 } }, /^message must be a string/],
        ['/publish', { tag: 't', message: 'more than ten bytes' }, /^message is larger than \[notification\] max_message_bytes/],
        ['/publish', { tag: 't', message: 'm', mediaType: 'not a type' }, /^mediaType must be/]
      ]
      for (const [path, body, message] of cases) {
        const res = await post(app, path, body)
        t.equal(res.statusCode, 400, `${path} ${JSON.stringify(body)}`)
        t.match(res.json().message, message)
      }
    })

    t.test('a malformed JSON body answers 400, not 500', async t => {
      const { app } = await harness(t)
      const res = await app.inject({ method: 'POST', url: `${API}/publish`, headers: JSON_HEADERS, payload: '{"tag":' })
      t.equal(res.statusCode, 400)
    })

    t.test('the [notification] credentials protect every route, before the body is read', async t => {
      await flusher?.flushall()
      const { app } = await appOnText(t, `[notification]\nusername = n\npassword = p\n${backendLines()}`)
      const denied = await app.inject({ method: 'POST', url: `${API}/publish`, headers: { 'content-type': 'text/plain' }, payload: 'x' })
      t.equal(denied.statusCode, 401)
      const ok = await app.inject({ method: 'POST', url: `${API}/publish`, headers: { ...JSON_HEADERS, authorization: basic('n', 'p') }, payload: '{"tag":"t","message":"m"}' })
      t.equal(ok.statusCode, 200)
    })

    if (backend === 'redis') {
      t.test('with Redis down every route answers 503 JSON, and recovers when it is back', async t => {
        const { app } = await harness(t)
        const id = await subscribe(app, httpcb('http://127.0.0.1:1/cb', 'x'))
        await redis!.kill()
        let restarted = false
        // Restarted below; if the test fails first, still leave a server for the next test.
        t.teardown(async () => { if (!restarted) await redis!.restart() })
        for (const res of [
          await post(app, '/subscription', { subscriberId: 's', ...httpcb('http://127.0.0.1:1/cb', 'x') }),
          await app.inject({ url: `${API}/subscription/${id}` }),
          await app.inject({ method: 'DELETE', url: `${API}/subscription/${id}` }),
          await post(app, '/publish', { tag: 'x', message: 'm' })
        ]) {
          t.equal(res.statusCode, 503)
          t.equal(res.json().code, 'GMS_GATE_BACKEND_UNAVAILABLE')
        }
        await redis!.restart()
        restarted = true
        let status = 503
        const deadline = Date.now() + 5000
        // The client reconnects with backoff: retry until it is back.
        while (status === 503 && Date.now() < deadline) {
          status = (await post(app, '/publish', { tag: 'x', message: 'm' })).statusCode
          if (status === 503) await new Promise(resolve => setTimeout(resolve, 50))
        }
        t.equal(status, 200)
      })
    }
  })
}

suite('memory')
suite('redis')
