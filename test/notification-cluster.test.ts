import t from 'tap'
import type { FastifyInstance } from 'fastify'
import type { Delivered } from '../services/notification/delivery.js'
import type { Dispatched } from '../services/notification/plugin.js'
import { appOnText } from './helpers/app.js'
import { startReceiver } from './helpers/receiver.js'
import { hasRedisServer, NO_REDIS_REASON, startRedis } from './helpers/redis.js'
import { openStream } from './helpers/sse.js'

const API = '/genesys/1/notification'
const JSON_HEADERS = { 'content-type': 'application/json' }

/** Records what an instance dispatched, so an event handled before its id is known is not missed. */
function dispatchRecorder (app: FastifyInstance): (eventId: string) => Promise<Dispatched> {
  const seen: Dispatched[] = []
  const waiting: Array<() => void> = []
  app.gmsNotification.events.on('dispatched', (d: Dispatched) => {
    seen.push(d)
    for (const w of waiting.splice(0)) w()
  })
  return async function wait (eventId) {
    for (;;) {
      const found = seen.find(d => d.eventId === eventId)
      if (found !== undefined) return found
      await new Promise<void>(resolve => waiting.push(resolve))
    }
  }
}

t.test('two instances on one redis-server', { skip: hasRedisServer ? false : NO_REDIS_REASON }, async t => {
  const redis = await startRedis()
  t.teardown(() => redis.kill())
  const ini = `[notification]\nbackend = redis\nredis_url = ${redis.url}\nretry_initial_ms = 1\nretry_max_ms = 4\n`
  const a = (await appOnText(t, ini)).app
  const b = (await appOnText(t, ini)).app

  t.test('a callback subscribed on B and published on A is delivered once', async t => {
    const rx = await startReceiver(t)
    const sub = await b.inject({ method: 'POST', url: `${API}/subscription`, headers: JSON_HEADERS, payload: JSON.stringify({ subscriberId: 's', filter: 'ors.*', notificationDetails: { type: 'httpcb', deviceId: `${rx.base}/cb` } }) })
    t.equal(sub.statusCode, 200)
    // Both instances report what they did with the event: exactly one claims the callback.
    const onA = dispatchRecorder(a)
    const onB = dispatchRecorder(b)
    const delivered = new Promise<Delivered>(resolve => {
      for (const app of [a, b]) app.gmsNotification.events.once('delivered', resolve)
    })
    const pub = await a.inject({ method: 'POST', url: `${API}/publish`, headers: JSON_HEADERS, payload: JSON.stringify({ tag: 'ors.contact.1', message: 'hello' }) })
    t.same(pub.json().matched, 1)
    const [dA, dB] = await Promise.all([onA(pub.json().id), onB(pub.json().id)])
    t.equal(dA.matched + dB.matched, 2, 'each instance saw the subscription')
    t.equal(dA.claimed + dB.claimed, 1, 'one instance claimed the callback')
    await delivered
    t.equal(rx.callsTo('/cb').length, 1)
    t.equal(rx.callsTo('/cb')[0]!.body, 'hello')
  })

  t.test('a stream opened on B gets an event published on A', async t => {
    await b.listen({ port: 0, host: '127.0.0.1' })
    const port = (b.server.address() as { port: number }).port
    const sub = await b.inject({ method: 'POST', url: `${API}/subscription`, headers: JSON_HEADERS, payload: JSON.stringify({ subscriberId: 's', filter: 'chat', notificationDetails: { type: 'sse' } }) })
    const stream = await openStream(`http://127.0.0.1:${port}${API}/stream/${sub.json().id}`)
    t.teardown(() => stream.close())
    await a.inject({ method: 'POST', url: `${API}/publish`, headers: JSON_HEADERS, payload: JSON.stringify({ tag: 'chat', message: 'from A' }) })
    t.equal(JSON.parse((await stream.next()).data).message, 'from A')
  })

  t.test('a subscription made on B is read and deleted on A', async t => {
    const sub = await b.inject({ method: 'POST', url: `${API}/subscription`, headers: JSON_HEADERS, payload: JSON.stringify({ subscriberId: 's', filter: 'x', notificationDetails: { type: 'sse' } }) })
    const id = sub.json().id
    t.equal((await a.inject({ url: `${API}/subscription/${id}` })).statusCode, 200)
    t.equal((await a.inject({ method: 'DELETE', url: `${API}/subscription/${id}` })).statusCode, 204)
    t.equal((await b.inject({ url: `${API}/subscription/${id}` })).statusCode, 404)
  })
})
