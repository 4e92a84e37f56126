import t from 'tap'
import { appOnText, basic } from './helpers/app.js'
import { hasRedisServer, NO_REDIS_REASON, startRedis } from './helpers/redis.js'

const config = (url: string) => `[storage]
backend = redis
redis_url = ${url}

[service.ri]
username = genesys
password = genesys
_type = builtin
_service = request-interaction
_access_number = 100, 101
_provide_code = true
_access_code_length = 4

[service.few]
username = genesys
password = genesys
_type = builtin
_service = request-interaction
_access_number = 200, 201, 202, 203, 204

[service.match]
username = genesys
password = genesys
_type = builtin
_service = match-interaction
`
const AUTH = { authorization: basic('genesys', 'genesys') }

t.test('two gms-gate instances sharing one Redis', { skip: hasRedisServer ? false : NO_REDIS_REASON }, async t => {
  const redis = await startRedis()
  t.teardown(() => redis.kill())
  const { app: a } = await appOnText(t, config(redis.url))
  const { app: b } = await appOnText(t, config(redis.url))
  const reserve = (i: number, service: string) => (i % 2 === 0 ? a : b).inject({
    method: 'POST', url: `/genesys/1/service/${service}`, headers: AUTH, payload: { _phone_number: String(i) }
  })

  t.test('1,000 concurrent reservations with codes never share a number and code', async t => {
    const replies = await Promise.all(Array.from({ length: 1000 }, (_, i) => reserve(i, 'ri')))
    t.same(replies.filter(r => r.statusCode !== 200).map(r => r.statusCode), [])
    const pairs = new Set(replies.map(r => `${r.json()._access_number}:${r.json()._access_code}`))
    t.equal(pairs.size, 1000)
  })

  t.test('1,000 concurrent reservations on a five-number pool: five win, the rest get 503', async t => {
    const replies = await Promise.all(Array.from({ length: 1000 }, (_, i) => reserve(i, 'few')))
    const won = replies.filter(r => r.statusCode === 200)
    t.equal(won.length, 5)
    t.equal(new Set(won.map(r => r.json()._access_number)).size, 5)
    t.equal(replies.filter(r => r.statusCode === 503).length, 995)
  })

  t.test('a reservation made on one instance is matched and deleted on the other', async t => {
    const made = (await a.inject({ method: 'POST', url: '/genesys/1/service/ri', headers: AUTH, payload: { _phone_number: '42' } })).json()
    const matched = await b.inject({
      method: 'POST',
      url: '/genesys/1/service/match',
      headers: AUTH,
      payload: { _access_number: made._access_number, _access_code: made._access_code, _phone_number: '42' }
    })
    t.match(matched.json(), { _id: made._id })
    t.equal((await b.inject({ method: 'DELETE', url: `/genesys/1/service/${made._id}`, headers: AUTH })).statusCode, 200)
    t.equal((await a.inject({ method: 'GET', url: `/genesys/1/service/${made._id}`, headers: AUTH })).statusCode, 404)
  })

  t.test('a reservation expires in Redis and its number is free again', async t => {
    const { app } = await appOnText(t, config(redis.url) + '[service.once]\n_type = builtin\n_service = request-interaction\n_access_number = 300\n_booking_expiration_timeout = 0.2\n')
    const reserve = () => app.inject({ method: 'POST', url: '/genesys/1/service/once', payload: { _phone_number: '1' } })
    t.equal((await reserve()).statusCode, 200)
    t.equal((await reserve()).statusCode, 503)
    // Expiry is Redis's PX running out: no event to await.
    await new Promise(resolve => setTimeout(resolve, 250))
    t.equal((await reserve()).statusCode, 200)
  })

  t.test('with Redis down a reservation answers 503 with a JSON error at once', async t => {
    await redis.kill()
    const started = Date.now()
    const down = await reserve(0, 'ri')
    t.equal(down.statusCode, 503)
    t.equal(down.json().code, 'GMS_GATE_BACKEND_UNAVAILABLE')
    t.ok(Date.now() - started < 1500, 'no hang')
  })
})
