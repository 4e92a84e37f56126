import { writeFile } from 'node:fs/promises'
import t from 'tap'
import { appOnFile, appOnText, basic } from './helpers/app.js'

const SERVICES = `[server]
username = admin
password = server-pass

[service.request-interaction]
username = genesys
password = genesys
_type = builtin
_service = request-interaction
_access_number = 8005550100
_provide_code = true
_access_code_length = 4
_booking_expiration_timeout = 60

[service.match-interaction]
username = ivr
password = ivr-pass
_type = builtin
_service = match-interaction

[service.single]
username = genesys
password = genesys
_type = builtin
_service = request-interaction
_access_number = 8005550199
_provide_code = false
`
const GENESYS = basic('genesys', 'genesys')
const IVR = basic('ivr', 'ivr-pass')
const form = (fields: Record<string, string>) => ({
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  payload: new URLSearchParams(fields).toString()
})

t.test('request-interaction then match-interaction, as a GMS caller does it', async t => {
  const { app } = await appOnText(t, SERVICES)
  const reserved = await app.inject({
    method: 'POST',
    url: '/genesys/1/service/request-interaction',
    ...form({ _phone_number: '5551234', firstName: 'Ada' }),
    headers: { ...form({}).headers, authorization: GENESYS }
  })
  t.equal(reserved.statusCode, 200)
  const r = reserved.json()
  t.match(r, { _id: /^request-interaction\./, _access_number: '8005550100', _access_code: /^\d{4}$/, _expiration_time: 60 })

  const matched = await app.inject({
    method: 'POST',
    url: '/genesys/1/service/match-interaction',
    headers: { authorization: IVR },
    payload: { _access_number: r._access_number, _access_code: r._access_code, _phone_number: '5551234' }
  })
  t.equal(matched.statusCode, 200)
  t.match(matched.json(), { _id: r._id, _data_id: /./ })

  const again = await app.inject({
    method: 'POST',
    url: '/genesys/1/service/match-interaction',
    headers: { authorization: IVR },
    payload: { _access_number: r._access_number, _access_code: r._access_code }
  })
  t.equal(again.statusCode, 404, 'a reservation matches once')
  t.equal(again.json().code, 'GMS_GATE_NOT_FOUND')
})

t.test('user data from a multipart form lands in storage under _data_id', async t => {
  const { app } = await appOnText(t, SERVICES)
  const boundary = 'gmsboundary'
  const payload = [
    `--${boundary}\r\nContent-Disposition: form-data; name="_phone_number"\r\n\r\n5551234`,
    `--${boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello`,
    `--${boundary}\r\nContent-Disposition: form-data; name="pic"; filename="a.bin"\r\nContent-Type: application/octet-stream\r\n\r\n\u0001\u0002`,
    `--${boundary}--\r\n`
  ].join('\r\n')
  const res = await app.inject({
    method: 'POST',
    url: '/genesys/1/service/single',
    payload,
    headers: { authorization: GENESYS, 'content-type': `multipart/form-data; boundary=${boundary}` }
  })
  t.equal(res.statusCode, 200)
  t.notOk('_access_code' in res.json(), 'no code when _provide_code = false')
  const matched = await app.inject({
    method: 'POST', url: '/genesys/1/service/match-interaction', headers: { authorization: IVR }, payload: { _access_number: '8005550199' }
  })
  t.equal(matched.json()._id, res.json()._id)
})

t.test('the request decides _provide_code when the section does not set it', async t => {
  const { app } = await appOnText(t, SERVICES.replace('_provide_code = true\n', ''))
  const reserve = (provide: string) => app.inject({
    method: 'POST', url: '/genesys/1/service/request-interaction', headers: { authorization: GENESYS }, payload: { _phone_number: '1', _provide_code: provide }
  })
  t.match((await reserve('true')).json(), { _access_code: /^\d{4}$/ })
  t.notOk('_access_code' in (await reserve('false')).json())
})

t.test('_provide_code set in the section overrides the request', async t => {
  const { app } = await appOnText(t, SERVICES)
  const res = await app.inject({
    method: 'POST', url: '/genesys/1/service/single', headers: { authorization: GENESYS }, payload: { _phone_number: '1', _provide_code: 'true' }
  })
  t.equal(res.statusCode, 200)
  t.notOk('_access_code' in res.json())
})

t.test('a pool with no free number answers 503 with a JSON error', async t => {
  const { app } = await appOnText(t, SERVICES)
  const reserve = () => app.inject({ method: 'POST', url: '/genesys/1/service/single', headers: { authorization: GENESYS }, payload: { _phone_number: '1' } })
  t.equal((await reserve()).statusCode, 200)
  const full = await reserve()
  t.equal(full.statusCode, 503)
  t.match(full.json(), { code: 'GMS_GATE_ACCESS_POOL_EXHAUSTED', message: /\[service.single\]/ })
})

t.test('an expired reservation frees its number for the next caller', async t => {
  const { app } = await appOnText(t, SERVICES.replace('_provide_code = false', '_provide_code = false\n_booking_expiration_timeout = 0.2'))
  const reserve = () => app.inject({ method: 'POST', url: '/genesys/1/service/single', headers: { authorization: GENESYS }, payload: { _phone_number: '1' } })
  t.equal((await reserve()).statusCode, 200)
  t.equal((await reserve()).statusCode, 503)
  // Expiry is the passing of time itself: no event to await.
  await new Promise(resolve => setTimeout(resolve, 250))
  t.equal((await reserve()).statusCode, 200)
})

t.test('deleting an instance releases its access number', async t => {
  const { app } = await appOnText(t, SERVICES)
  const reserve = () => app.inject({ method: 'POST', url: '/genesys/1/service/single', headers: { authorization: GENESYS }, payload: { _phone_number: '1' } })
  const { _id: id } = (await reserve()).json()
  const deleted = await app.inject({ method: 'DELETE', url: `/genesys/1/service/${id}`, headers: { authorization: GENESYS } })
  t.equal(deleted.statusCode, 200)
  t.equal((await reserve()).statusCode, 200)
  const twice = await app.inject({ method: 'DELETE', url: `/genesys/1/service/${id}`, headers: { authorization: GENESYS } })
  t.equal(twice.statusCode, 404)
})

t.test('an instance id is refused with another service\'s valid credentials', async t => {
  const { app } = await appOnText(t, SERVICES)
  const { _id: id } = (await app.inject({ method: 'POST', url: '/genesys/1/service/single', headers: { authorization: GENESYS }, payload: { _phone_number: '1' } })).json()
  const other = await app.inject({ method: 'DELETE', url: `/genesys/1/service/${id}`, headers: { authorization: IVR } })
  t.equal(other.statusCode, 401)
  t.equal(other.body, '')
  const server = await app.inject({ method: 'GET', url: `/genesys/1/service/${id}`, headers: { authorization: basic('admin', 'server-pass') } })
  t.equal(server.statusCode, 401, '[server] credentials do not open it either')
  const own = await app.inject({ method: 'GET', url: `/genesys/1/service/${id}`, headers: { authorization: GENESYS } })
  t.match(own.json(), { _id: id, _service: 'single', _access_number: '8005550199' })
})

t.test('a forged instance id naming another service finds nothing', async t => {
  const { app } = await appOnText(t, SERVICES)
  const { _id: id } = (await app.inject({ method: 'POST', url: '/genesys/1/service/single', headers: { authorization: GENESYS }, payload: { _phone_number: '1' } })).json()
  const forged = 'match-interaction.' + (id as string).split('.').pop()!
  const res = await app.inject({ method: 'DELETE', url: `/genesys/1/service/${forged}`, headers: { authorization: IVR } })
  t.equal(res.statusCode, 404)
})

t.test('an unknown service is checked against [server], then answers a JSON 404', async t => {
  const { app } = await appOnText(t, SERVICES)
  t.equal((await app.inject({ method: 'POST', url: '/genesys/1/service/nope' })).statusCode, 401)
  const res = await app.inject({ method: 'POST', url: '/genesys/1/service/nope', headers: { authorization: basic('admin', 'server-pass') } })
  t.equal(res.statusCode, 404)
  t.equal(res.json().code, 'GMS_GATE_NOT_FOUND')
})

t.test('a request without _phone_number is a 400 naming the field', async t => {
  const { app } = await appOnText(t, SERVICES)
  const res = await app.inject({ method: 'POST', url: '/genesys/1/service/single', headers: { authorization: GENESYS }, payload: { name: 'x' } })
  t.equal(res.statusCode, 400)
  t.match(res.json().message, /_phone_number/)
})

t.test('match-interaction without _access_number is a 400 naming the field', async t => {
  const { app } = await appOnText(t, SERVICES)
  const res = await app.inject({ method: 'POST', url: '/genesys/1/service/match-interaction', headers: { authorization: IVR }, payload: {} })
  t.equal(res.statusCode, 400)
  t.match(res.json().message, /_access_number/)
})

t.test('a GET on a service is a 405, not an instance', async t => {
  const { app } = await appOnText(t, SERVICES)
  const res = await app.inject({ method: 'GET', url: '/genesys/1/service/single', headers: { authorization: GENESYS } })
  t.equal(res.statusCode, 405)
})

const MINIMAL = `[service.a]
username = a
password = a-pass
_type = builtin
_service = match-interaction
`

t.test('a service added to the file while the server runs is served and protected at once', async t => {
  const { app, file, nextReload } = await appOnFile(t, MINIMAL)
  t.equal((await app.inject({ method: 'POST', url: '/genesys/1/service/b', payload: { _access_number: '1' } })).statusCode, 404)
  const reloaded = nextReload()
  await writeFile(file, MINIMAL + '[service.b]\nusername = b\npassword = b-pass\n_type = builtin\n_service = match-interaction\n')
  await reloaded
  t.equal((await app.inject({ method: 'POST', url: '/genesys/1/service/b', payload: { _access_number: '1' } })).statusCode, 401)
  const res = await app.inject({ method: 'POST', url: '/genesys/1/service/b', headers: { authorization: basic('b', 'b-pass') }, payload: { _access_number: '1' } })
  t.equal(res.statusCode, 404, 'served: match-interaction finds no reservation')
  t.match(res.json().message, /no live reservation/)
})

t.test('a service removed from the file answers 404 at once', async t => {
  const { app, file, nextReload } = await appOnFile(t, MINIMAL + '[service.b]\n_type = builtin\n_service = match-interaction\n')
  t.equal((await app.inject({ method: 'POST', url: '/genesys/1/service/b', payload: {} })).statusCode, 400)
  const reloaded = nextReload()
  await writeFile(file, MINIMAL)
  await reloaded
  const res = await app.inject({ method: 'POST', url: '/genesys/1/service/b', payload: {} })
  t.equal(res.statusCode, 404)
  t.match(res.json().message, /no service or live instance named "b"/)
})

t.test('a service whose credentials change rejects the old ones at once', async t => {
  const { app, file, nextReload } = await appOnFile(t, MINIMAL)
  const call = (auth: string) => app.inject({ method: 'POST', url: '/genesys/1/service/a', headers: { authorization: auth }, payload: {} })
  t.equal((await call(basic('a', 'a-pass'))).statusCode, 400)
  const reloaded = nextReload()
  await writeFile(file, MINIMAL.replace('a-pass', 'new-pass'))
  await reloaded
  t.equal((await call(basic('a', 'a-pass'))).statusCode, 401)
  t.equal((await call(basic('a', 'new-pass'))).statusCode, 400)
})

t.test('a bad service section on reload keeps the last good services', async t => {
  const { app, file, nextReloadError } = await appOnFile(t, MINIMAL)
  const rejected = nextReloadError()
  await writeFile(file, MINIMAL.replace('_type = builtin', '_type = magic'))
  const { error } = await rejected
  t.equal(error.line, 4)
  const res = await app.inject({ method: 'POST', url: '/genesys/1/service/a', headers: { authorization: basic('a', 'a-pass') }, payload: { _access_number: '1' } })
  t.equal(res.statusCode, 404, 'still the builtin match-interaction')
})

t.test('the Service API starts beside a plugin that registered the same body parsers for the whole app', async t => {
  const { default: Fastify } = await import('fastify')
  const { default: fp } = await import('fastify-plugin')
  const { default: formbody } = await import('@fastify/formbody')
  const { default: multipart } = await import('@fastify/multipart')
  const { gmsGate } = await import('../plugins/gate.js')
  const { default: serviceApi } = await import('../services/service/service-api.js')
  const { default: storageApi } = await import('../services/storage/storage-api.js')
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(gmsGate, { options: SERVICES })
  await app.register(storageApi)
  // What a Storage API wrapped with fastify-plugin would do.
  await app.register(fp(async (root) => {
    await root.register(formbody)
    await root.register(multipart)
  }))
  await app.register(serviceApi)
  await app.ready()
  const res = await app.inject({
    method: 'POST', url: '/genesys/1/service/single', headers: { authorization: GENESYS, 'content-type': 'application/x-www-form-urlencoded' }, payload: '_phone_number=1'
  })
  t.equal(res.statusCode, 200)
})
