/** The Storage API over HTTP, the same tests against the memory and the Redis backend. */
import { setTimeout as sleep } from 'node:timers/promises'
import { rename, writeFile } from 'node:fs/promises'
import { Readable } from 'node:stream'
import type { FastifyInstance, InjectOptions } from 'fastify'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { appOnFile, appOnText, basic, type LogCapture } from './helpers/app.js'
import { hasRedisServer, NO_REDIS_REASON, startRedis, type RedisProcess } from './helpers/redis.js'
import { KEY_PREFIX } from '../services/storage/redis-store.js'

const S = '/genesys/1/storage'
const LIMITS = 'max_keys = 4\nmax_value_bytes = 64\nmax_body_bytes = 1024\nmax_ttl = 3600\n'

type Part = { name: string, value: string } | { name: string, filename: string, contentType: string, data: Buffer }

/** A multipart/form-data body, written by hand so each test controls every byte. */
function multipart (parts: Part[], boundary = 'gms-gate-test-boundary'): Pick<InjectOptions, 'payload' | 'headers'> {
  const chunks: Buffer[] = []
  for (const part of parts) {
    const head = 'filename' in part
      ? `Content-Disposition: form-data; name="${part.name}"; filename="${part.filename}"\r\nContent-Type: ${part.contentType}\r\n`
      : `Content-Disposition: form-data; name="${part.name}"\r\n`
    chunks.push(Buffer.from(`--${boundary}\r\n${head}\r\n`), 'filename' in part ? part.data : Buffer.from(part.value), Buffer.from('\r\n'))
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`))
  return { payload: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } }
}

/** Replace the options file in one step (as editors do), so no reload sees it half written. */
async function replaceFile (file: string, text: string): Promise<void> {
  await writeFile(`${file}.tmp`, text)
  await rename(`${file}.tmp`, file)
}

function form (body: string): Pick<InjectOptions, 'payload' | 'headers'> {
  return { payload: body, headers: { 'content-type': 'application/x-www-form-urlencoded' } }
}

/** What differs between the backends in these tests: how time passes and how a ttl is observed. */
interface Backend {
  readonly name: 'memory' | 'redis'
  readonly app: FastifyInstance
  readonly logs: LogCapture
  /** A ttl short enough for a test to see it run out. */
  readonly shortTtl: number
  /** Let that short ttl run out. */
  passShortTtl (): Promise<void>
  /** Check that `id` expires `seconds` after now (and not before). */
  expectTtl (t: Test, id: string, seconds: number): Promise<void>
}

async function memoryBackend (t: Test, ini = LIMITS): Promise<Backend> {
  let now = 1_700_000_000_000
  const { app, logs } = await appOnText(t, `[storage]\n${ini}`, { storage: { now: () => now } })
  return {
    name: 'memory',
    app,
    logs,
    shortTtl: 10,
    async passShortTtl () { now += 10_000 },
    async expectTtl (t, id, seconds) {
      now += seconds * 1000 - 1
      t.equal((await app.inject(`${S}/${id}`)).statusCode, 200, `still there 1 ms before ${seconds} s`)
      now += 1
      t.equal((await app.inject(`${S}/${id}`)).statusCode, 404, `gone at ${seconds} s`)
    }
  }
}

async function redisBackend (t: Test, redis: RedisProcess, ini = LIMITS): Promise<Backend> {
  const { app, logs } = await appOnText(t, `[storage]\nbackend = redis\nredis_url = ${redis.url}\n${ini}`)
  const probe = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0 })
  t.teardown(() => probe.disconnect())
  return {
    name: 'redis',
    app,
    logs,
    shortTtl: 0.2,
    async passShortTtl () { await sleep(250) },
    async expectTtl (t, id, seconds) {
      const pttl = await probe.pttl(KEY_PREFIX + id)
      t.ok(pttl > seconds * 1000 - 1000 && pttl <= seconds * 1000, `PTTL ${pttl} ms is just under ${seconds} s`)
    }
  }
}

async function create (app: FastifyInstance, body: Pick<InjectOptions, 'payload' | 'headers'>, ttl = '60'): Promise<string> {
  const res = await app.inject({ method: 'POST', url: `${S}/${ttl}`, ...body })
  if (res.statusCode !== 200) throw new Error(`create answered ${res.statusCode}: ${res.body}`)
  return res.json().id
}

/** Expect a JSON error with this status whose message names `mentions`. */
function expectError (t: Test, res: { statusCode: number, headers: Record<string, unknown>, json (): any }, status: number, mentions: string | RegExp): void {
  t.equal(res.statusCode, status, `answers ${status}`)
  t.match(String(res.headers['content-type']), /^application\/json/)
  t.match(res.json(), { statusCode: status, message: mentions })
}

function storageApiSuite (setup: (t: Test, ini?: string) => Promise<Backend>): (t: Test) => Promise<void> {
  return async t => {
    t.test('a URL-encoded form is stored under a new id and read back, whole and key by key', async t => {
      const { app } = await setup(t)
      const id = await create(app, form('name=Ada%20Lovelace&lang=fr'))
      t.match(id, /^[0-9a-f-]{36}$/)
      const all = await app.inject(`${S}/${id}`)
      t.equal(all.statusCode, 200)
      t.same(all.json(), { name: 'Ada Lovelace', lang: 'fr' })
      const one = await app.inject(`${S}/${id}/name`)
      t.equal(one.statusCode, 200)
      t.equal(one.headers['content-type'], 'text/plain; charset=utf-8')
      t.equal(one.body, 'Ada Lovelace')
    })

    t.test('a JSON object is stored; numbers and booleans are kept as their text', async t => {
      const { app } = await setup(t)
      const id = await create(app, { payload: { city: 'Zürich', floor: 3, vip: true } })
      t.same((await app.inject(`${S}/${id}`)).json(), { city: 'Zürich', floor: '3', vip: 'true' })
    })

    t.test('a multipart form keeps text fields and files, files as their bytes with their content type', async t => {
      const { app } = await setup(t)
      const bytes = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0xff, 0x0d, 0x0a])
      const id = await create(app, multipart([
        { name: 'note', value: 'hello' },
        { name: 'picture', filename: 'me (1).png', contentType: 'image/png', data: bytes }
      ]))
      t.same((await app.inject(`${S}/${id}`)).json(), {
        note: 'hello',
        picture: { filename: 'me (1).png', contentType: 'image/png', size: bytes.length }
      })
      const file = await app.inject(`${S}/${id}/picture`)
      t.equal(file.statusCode, 200)
      t.equal(file.headers['content-type'], 'image/png')
      t.equal(file.headers['content-disposition'], "attachment; filename*=UTF-8''me%20%281%29.png")
      t.equal(file.headers['x-content-type-options'], 'nosniff')
      t.same(file.rawPayload, bytes)
      t.equal((await app.inject(`${S}/${id}/note`)).body, 'hello')
    })

    t.test('a file with a malformed content type comes back as application/octet-stream', async t => {
      const { app } = await setup(t)
      const id = await create(app, multipart([{ name: 'f', filename: 'x', contentType: 'not a type', data: Buffer.from('x') }]))
      t.equal((await app.inject(`${S}/${id}/f`)).headers['content-type'], 'application/octet-stream')
    })

    t.test('POST /<id>/<ttl> adds and overwrites keys and answers the id', async t => {
      const { app } = await setup(t)
      const id = await create(app, form('a=1&b=2'))
      const res = await app.inject({ method: 'POST', url: `${S}/${id}/60`, ...form('b=two&c=3') })
      t.equal(res.statusCode, 200)
      t.same(res.json(), { id })
      t.same((await app.inject(`${S}/${id}`)).json(), { a: '1', b: 'two', c: '3' })
    })

    t.test('data is gone once its ttl has run out', async t => {
      const backend = await setup(t)
      const id = await create(backend.app, form('a=1'), String(backend.shortTtl))
      t.equal((await backend.app.inject(`${S}/${id}`)).statusCode, 200)
      await backend.passShortTtl()
      expectError(t, await backend.app.inject(`${S}/${id}`), 404, /unknown or expired/)
      expectError(t, await backend.app.inject(`${S}/${id}/a`), 404, /unknown or expired/)
      expectError(t, await backend.app.inject({ method: 'POST', url: `${S}/${id}/60`, ...form('a=2') }), 404, /unknown or expired/)
    })

    t.test('data expires after exactly the ttl asked for', async t => {
      const backend = await setup(t)
      const id = await create(backend.app, form('a=1'), '120')
      await backend.expectTtl(t, id, 120)
    })

    t.test('an update resets the ttl to the one it names', async t => {
      const backend = await setup(t)
      const id = await create(backend.app, form('a=1'), '100')
      t.equal((await backend.app.inject({ method: 'POST', url: `${S}/${id}/50`, ...form('b=2') })).statusCode, 200)
      await backend.expectTtl(t, id, 50)
    })

    t.test('an update without a body only resets the ttl', async t => {
      const backend = await setup(t)
      const id = await create(backend.app, form('a=1'), '100')
      t.equal((await backend.app.inject({ method: 'POST', url: `${S}/${id}/40` })).statusCode, 200)
      t.same((await backend.app.inject(`${S}/${id}`)).json(), { a: '1' })
      await backend.expectTtl(t, id, 40)
    })

    for (const ttl of ['0', '-5', 'abc', '1e3', '0x10', 'Infinity']) {
      t.test(`a ttl of ${JSON.stringify(ttl)} falls back to 30 s, as in GMS`, async t => {
        const backend = await setup(t)
        const id = await create(backend.app, form('a=1'), encodeURIComponent(ttl))
        await backend.expectTtl(t, id, 30)
      })
    }

    t.test('a ttl over max_ttl is a 400 naming the ttl, on create and on update', async t => {
      const { app } = await setup(t)
      expectError(t, await app.inject({ method: 'POST', url: `${S}/3601`, ...form('a=1') }), 400, /ttl 3601 is over max_ttl \(3600 s\)/)
      const id = await create(app, form('a=1'))
      expectError(t, await app.inject({ method: 'POST', url: `${S}/${id}/99999999999999999999`, ...form('a=2') }), 400, /over max_ttl/)
      t.same((await app.inject(`${S}/${id}`)).json(), { a: '1' }, 'nothing changed')
    })

    t.test('DELETE /<id>/<key> removes one key; removing the last one removes the id', async t => {
      const { app } = await setup(t)
      const id = await create(app, form('a=1&b=2'))
      const res = await app.inject({ method: 'DELETE', url: `${S}/${id}/a` })
      t.equal(res.statusCode, 200)
      t.equal(res.body, '')
      t.same((await app.inject(`${S}/${id}`)).json(), { b: '2' })
      expectError(t, await app.inject({ method: 'DELETE', url: `${S}/${id}/a` }), 404, /key "a"/)
      t.equal((await app.inject({ method: 'DELETE', url: `${S}/${id}/b` })).statusCode, 200)
      expectError(t, await app.inject(`${S}/${id}`), 404, /unknown or expired/)
    })

    t.test('DELETE /<id> removes the id; a second DELETE is a 404', async t => {
      const { app } = await setup(t)
      const id = await create(app, form('a=1'))
      t.equal((await app.inject({ method: 'DELETE', url: `${S}/${id}` })).statusCode, 200)
      expectError(t, await app.inject(`${S}/${id}`), 404, /unknown or expired/)
      expectError(t, await app.inject({ method: 'DELETE', url: `${S}/${id}` }), 404, /unknown or expired/)
    })

    t.test('an unknown id or key is a JSON 404 on every route', async t => {
      const { app } = await setup(t)
      const id = await create(app, form('a=1'))
      for (const unknown of ['0b9c2f9e-4b1e-4c57-9d7e-3a0f6f1d2c11', 'not-an-id', 'x'.repeat(90)]) {
        const url = `${S}/${encodeURIComponent(unknown)}`
        expectError(t, await app.inject(url), 404, /unknown or expired/)
        expectError(t, await app.inject(`${url}/a`), 404, /unknown or expired/)
        expectError(t, await app.inject({ method: 'POST', url: `${url}/60`, ...form('a=1') }), 404, /unknown or expired/)
        expectError(t, await app.inject({ method: 'DELETE', url }), 404, /unknown or expired/)
        expectError(t, await app.inject({ method: 'DELETE', url: `${url}/a` }), 404, /unknown or expired/)
      }
      expectError(t, await app.inject(`${S}/${id}/nope`), 404, /key "nope"/)
    })

    t.test('too many keys is a 400 in every body kind, and an update past max_keys changes nothing', async t => {
      const { app } = await setup(t)
      const five = ['a', 'b', 'c', 'd', 'e']
      expectError(t, await app.inject({ method: 'POST', url: `${S}/60`, ...form(five.map(k => `${k}=1`).join('&')) }), 400, /max_keys is 4/)
      expectError(t, await app.inject({ method: 'POST', url: `${S}/60`, payload: Object.fromEntries(five.map(k => [k, '1'])) }), 400, /max_keys is 4/)
      expectError(t, await app.inject({ method: 'POST', url: `${S}/60`, ...multipart(five.map(name => ({ name, value: '1' }))) }), 400, /max_keys is 4/)
      const id = await create(app, form('a=1&b=1&c=1'))
      expectError(t, await app.inject({ method: 'POST', url: `${S}/${id}/60`, ...form('d=1&e=1') }), 400, /too many keys: 5 where max_keys is 4/)
      t.same((await app.inject(`${S}/${id}`)).json(), { a: '1', b: '1', c: '1' }, 'nothing written')
      t.equal((await app.inject({ method: 'POST', url: `${S}/${id}/60`, ...form('a=2&d=1') })).statusCode, 200, 'overwriting a key adds none')
    })

    t.test('a value over max_value_bytes is a 413 naming its key, in every body kind', async t => {
      const { app } = await setup(t)
      const big = 'x'.repeat(65)
      expectError(t, await app.inject({ method: 'POST', url: `${S}/60`, ...form(`ok=1&big=${big}`) }), 413, /key "big" is over max_value_bytes \(64\)/)
      expectError(t, await app.inject({ method: 'POST', url: `${S}/60`, payload: { big } }), 413, /key "big"/)
      expectError(t, await app.inject({ method: 'POST', url: `${S}/60`, ...multipart([{ name: 'big', value: big }]) }), 413, /key "big"/)
      expectError(t, await app.inject({
        method: 'POST', url: `${S}/60`, ...multipart([{ name: 'pic', filename: 'p.bin', contentType: 'application/octet-stream', data: Buffer.alloc(65) }])
      }), 413, /key "pic" is over max_value_bytes/)
      t.equal((await app.inject({ method: 'POST', url: `${S}/60`, payload: { fits: 'x'.repeat(64) } })).statusCode, 200, '64 bytes fit')
      t.equal((await app.inject({ method: 'POST', url: `${S}/60`, payload: { fits: 'é'.repeat(33) } })).statusCode, 413, 'bytes, not characters')
    })

    t.test('a body over max_body_bytes is a 413, with or without a Content-Length', async t => {
      const { app } = await setup(t)
      const body = JSON.stringify({ a: 'x'.repeat(60), b: 'x'.repeat(60) }).padEnd(1100, ' ')
      expectError(t, await app.inject({ method: 'POST', url: `${S}/60`, payload: body, headers: { 'content-type': 'application/json' } }), 413, /max_body_bytes \(1024\)/)
      const chunked = await app.inject({
        method: 'POST', url: `${S}/60`, payload: Readable.from([Buffer.from(body.slice(0, 600)), Buffer.from(body.slice(600))]), headers: { 'content-type': 'application/json' }
      })
      expectError(t, chunked, 413, /max_body_bytes/)
    })

    t.test('a multipart body whose values add up past max_body_bytes is a 413', async t => {
      const { app } = await setup(t, 'max_keys = 100\nmax_value_bytes = 300\nmax_body_bytes = 1000\n')
      const parts = Array.from({ length: 4 }, (_, i) => ({ name: `k${i}`, value: 'v'.repeat(300) }))
      const body = multipart(parts)
      const payload = Readable.from([body.payload as Buffer])
      expectError(t, await app.inject({ method: 'POST', url: `${S}/60`, payload, headers: body.headers }), 413, /max_body_bytes \(1000\)/)
    })

    t.test('every malformed body is a 4xx naming the problem, never a 500', async t => {
      const { app } = await setup(t)
      const post = (opts: Partial<InjectOptions>) => app.inject({ method: 'POST', url: `${S}/60`, ...opts })
      const json = (payload: string) => post({ payload, headers: { 'content-type': 'application/json' } })
      expectError(t, await post({}), 400, /holds no key/)
      expectError(t, await json('{}'), 400, /holds no key/)
      expectError(t, await post(form('')), 400, /holds no key/)
      expectError(t, await json('{"a": '), 400, /JSON/)
      expectError(t, await json('[1, 2]'), 400, /must be a form .* or a JSON object/)
      expectError(t, await json('"text"'), 400, /must be a form .* or a JSON object/)
      expectError(t, await json('{"a": {"b": 1}}'), 400, /key "a" must be a string, a number or a boolean/)
      expectError(t, await json('{"a": null}'), 400, /key "a"/)
      expectError(t, await json('{"__proto__": {"x": 1}}'), 400, /./)
      expectError(t, await json('{"constructor": "x"}'), 400, /key "constructor" is reserved/)
      expectError(t, await post(form('a=1&a=2')), 400, /key "a" is given more than once/)
      expectError(t, await post(form('=1')), 400, /a key is empty/)
      expectError(t, await post(form('toString=1')), 400, /reserved/)
      expectError(t, await post(form('a%01b=1')), 400, /control character/)
      expectError(t, await post(form(`${'k'.repeat(257)}=1`)), 400, /longer than 256 bytes/)
      expectError(t, await post({ payload: 'a=1', headers: { 'content-type': 'text/plain' } }), 415, /Unsupported Media Type/)
      expectError(t, await post({ payload: '<a/>', headers: { 'content-type': 'application/xml' } }), 415, /Unsupported Media Type/)
      expectError(t, await post(multipart([{ name: 'a', value: '1' }, { name: 'a', value: '2' }])), 400, /given more than once/)
      expectError(t, await post(multipart([{ name: 'constructor', value: '1' }])), 400, /reserved/)
      expectError(t, await post(multipart([{ name: 'k'.repeat(300), value: '1' }])), 400, /longer than 256 bytes/)
      const whole = multipart([{ name: 'a', value: '1' }, { name: 'f', filename: 'f', contentType: 'text/plain', data: Buffer.from('abc') }])
      const bytes = whole.payload as Buffer
      for (const cut of [10, 60, bytes.length - 20]) {
        expectError(t, await post({ payload: bytes.subarray(0, cut), headers: whole.headers }), 400, /multipart/)
      }
      expectError(t, await post({ payload: bytes, headers: { 'content-type': 'multipart/form-data' } }), 400, /malformed multipart body/)
      const id = await create(app, form('a=1'))
      expectError(t, await app.inject({ method: 'POST', url: `${S}/${id}/60`, payload: bytes.subarray(0, 60), headers: whole.headers }), 400, /multipart/)
      t.same((await app.inject(`${S}/${id}`)).json(), { a: '1' }, 'a truncated update wrote nothing')
    })

    t.test('keys may hold any printable text, and are read back by their URL-encoded name', async t => {
      const { app } = await setup(t)
      const id = await create(app, { payload: { 'a b/ç?': 'v', 'x.y': 'w' } })
      t.equal((await app.inject(`${S}/${id}/${encodeURIComponent('a b/ç?')}`)).body, 'v')
      t.equal((await app.inject({ method: 'DELETE', url: `${S}/${id}/${encodeURIComponent('a b/ç?')}` })).statusCode, 200)
      t.same((await app.inject(`${S}/${id}`)).json(), { 'x.y': 'w' })
    })

    t.test('fastify.gmsStorage is the store the routes serve', async t => {
      const { app, name } = await setup(t)
      t.equal(app.gmsStorage.store().backend, name)
      t.equal(app.gmsStorage.backend, name)
      const id = await app.gmsStorage.create({ greeting: { type: 'text', value: 'hi' } }, 60)
      t.equal((await app.inject(`${S}/${id}/greeting`)).body, 'hi')
    })
  }
}

t.test('memory backend', storageApiSuite((t, ini) => memoryBackend(t, ini)))

t.test('redis backend', { skip: hasRedisServer ? false : NO_REDIS_REASON }, async t => {
  const redis = await startRedis()
  t.teardown(() => redis.kill())
  await t.test('the Storage API', storageApiSuite((t, ini) => redisBackend(t, redis, ini)))
})

t.test('the Storage API is behind the [storage] policy', async t => {
  const { app } = await appOnText(t, '[server]\nusername = default\npassword = s3cret\n[storage]\nusername = store\n')
  const res = await app.inject({ method: 'POST', url: `${S}/60`, ...form('a=1') })
  t.equal(res.statusCode, 401)
  t.equal(res.headers['www-authenticate'], 'Basic realm="Genesys Application Configuration Needed", charset="UTF-8"')
  t.equal((await app.inject({ method: 'POST', url: `${S}/60`, ...form('a=1'), headers: { ...form('').headers, authorization: basic('default', 's3cret') } })).statusCode, 401)
  const ok = await app.inject({ method: 'POST', url: `${S}/60`, payload: 'a=1', headers: { ...form('').headers, authorization: basic('store', 's3cret') } })
  t.equal(ok.statusCode, 200)
  t.equal((await app.inject({ url: `${S}/${ok.json().id}` })).statusCode, 401)
})

t.test('the memory backend answers 507 when max_entries ids are live, and has room again once they expire', async t => {
  const backend = await memoryBackend(t, 'max_entries = 2\n')
  const { app } = backend
  await create(app, form('a=1'), '10')
  await create(app, form('a=1'), '10')
  expectError(t, await app.inject({ method: 'POST', url: `${S}/10`, ...form('a=1') }), 507, /max_entries = 2/)
  await backend.passShortTtl()
  t.equal((await app.inject({ method: 'POST', url: `${S}/10`, ...form('a=1') })).statusCode, 200)
})

t.test('the memory backend answers 507 past max_memory_bytes', async t => {
  const { app } = await memoryBackend(t, 'max_memory_bytes = 100\nmax_value_bytes = 60\n')
  await create(app, form(`a=${'x'.repeat(60)}`))
  expectError(t, await app.inject({ method: 'POST', url: `${S}/60`, ...form(`a=${'x'.repeat(60)}`) }), 507, /max_memory_bytes = 100/)
})

t.test('[storage] limits apply on reload, and a bad value keeps the last good ones', async t => {
  const { app, file, nextReload, nextReloadError } = await appOnFile(t, '[storage]\nmax_keys = 1\n')
  expectError(t, await app.inject({ method: 'POST', url: `${S}/60`, ...form('a=1&b=2') }), 400, /max_keys is 1/)
  let reloaded = nextReload()
  await replaceFile(file, '[storage]\nmax_keys = 2\n')
  await reloaded
  t.equal((await app.inject({ method: 'POST', url: `${S}/60`, ...form('a=1&b=2') })).statusCode, 200)
  const rejected = nextReloadError()
  await replaceFile(file, '[storage]\nmax_keys = 1\nbackend = disk\n')
  t.match((await rejected).error, { line: 3, reason: /backend in \[storage\] must be "memory" or "redis"/ })
  t.equal((await app.inject({ method: 'POST', url: `${S}/60`, ...form('a=1&b=2') })).statusCode, 200, 'max_keys = 2 still in force')
  reloaded = nextReload()
  await replaceFile(file, '[storage]\nmax_keys = 2\nmax_ttl = 10\n')
  await reloaded
  expectError(t, await app.inject({ method: 'POST', url: `${S}/11`, ...form('a=1') }), 400, /max_ttl \(10 s\)/)
})

t.test('with Redis', { skip: hasRedisServer ? false : NO_REDIS_REASON }, async t => {
  const redis = await startRedis()
  t.teardown(() => redis.kill())

  t.test('two gms-gate instances on the same Redis see the same data', async t => {
    const one = await redisBackend(t, redis)
    const two = await redisBackend(t, redis)
    const id = await create(one.app, multipart([{ name: 'f', filename: 'b.bin', contentType: 'application/x-test', data: Buffer.from([0, 1, 2, 255]) }]))
    const file = await two.app.inject(`${S}/${id}/f`)
    t.equal(file.headers['content-type'], 'application/x-test')
    t.same(file.rawPayload, Buffer.from([0, 1, 2, 255]))
    t.equal((await two.app.inject({ method: 'DELETE', url: `${S}/${id}` })).statusCode, 200)
    t.equal((await one.app.inject(`${S}/${id}`)).statusCode, 404)
  })

  t.test('Redis killed mid-run: fast JSON 503s and a log line, then recovery without a restart', async t => {
    const { app, logs } = await redisBackend(t, redis)
    const id = await create(app, form('a=1'), '600')
    await redis.kill()
    for (const request of [
      { url: `${S}/${id}` },
      { url: `${S}/${id}/a` },
      { method: 'POST' as const, url: `${S}/60`, ...form('b=2') },
      { method: 'POST' as const, url: `${S}/${id}/60`, ...form('b=2') },
      { method: 'DELETE' as const, url: `${S}/${id}/a` },
      { method: 'DELETE' as const, url: `${S}/${id}` }
    ]) {
      const started = Date.now()
      const res = await app.inject(request)
      t.ok(Date.now() - started < 2500, `${request.method ?? 'GET'} ${request.url} answered within the command timeout`)
      expectError(t, res, 503, 'storage backend (redis) is unavailable')
      t.equal(res.json().code, 'GMS_GATE_BACKEND_UNAVAILABLE')
    }
    t.ok(logs.contains('redis unavailable'), 'the outage is logged')
    t.ok(logs.lines.some(line => line.level === 50 && line.msg === 'storage backend (redis) is unavailable'), 'and each 503')
    t.notOk(logs.raw.some(line => line.includes('"statusCode":500')), 'never a 500')

    await redis.restart()
    const deadline = Date.now() + 10_000
    let status = 0
    while (Date.now() < deadline) {
      status = (await app.inject({ method: 'POST', url: `${S}/60`, ...form('b=2') })).statusCode
      if (status === 200) break
      await sleep(50)
    }
    t.equal(status, 200, 'served again once Redis is back')
    t.ok(logs.contains('redis reachable again'))
  })

  t.test('a gms-gate started while Redis is down answers 503, then serves once Redis is up', async t => {
    const down = await startRedis()
    await down.kill()
    t.teardown(() => down.kill())
    const { app } = await appOnText(t, `[storage]\nbackend = redis\nredis_url = ${down.url}\n`)
    expectError(t, await app.inject({ method: 'POST', url: `${S}/60`, ...form('a=1') }), 503, /unavailable/)
    await down.restart()
    const deadline = Date.now() + 10_000
    let status = 0
    while (Date.now() < deadline && status !== 200) {
      status = (await app.inject({ method: 'POST', url: `${S}/60`, ...form('a=1') })).statusCode
      if (status !== 200) await sleep(50)
    }
    t.equal(status, 200)
  })

  t.test('switching backend in the options file applies on the next request, closes the old client, and does not migrate data', async t => {
    const probe = new Redis(redis.url, { maxRetriesPerRequest: 0 })
    t.teardown(() => probe.disconnect())
    const clients = async (): Promise<number> => String(await probe.client('LIST')).trim().split('\n').length
    const baseline = await clients()

    const { app, file, logs, nextReload } = await appOnFile(t, '[storage]\n')
    const inMemory = await create(app, form('where=memory'))
    let reloaded = nextReload()
    await replaceFile(file, `[storage]\nbackend = redis\nredis_url = ${redis.url}\n`)
    await reloaded
    t.equal(app.gmsStorage.backend, 'redis')
    t.equal((await app.inject(`${S}/${inMemory}`)).statusCode, 404, 'memory data did not migrate')
    const inRedis = await create(app, form('where=redis'))
    t.equal(await probe.exists(KEY_PREFIX + inRedis), 1, 'written to Redis')
    t.equal(await clients(), baseline + 1, 'one client opened')
    t.ok(logs.contains('storage backend switched'))

    reloaded = nextReload()
    await replaceFile(file, '[storage]\nbackend = memory\n')
    await reloaded
    t.equal((await app.inject(`${S}/${inRedis}`)).statusCode, 404, 'Redis data is not served by the memory backend')
    const deadline = Date.now() + 5000
    while (await clients() !== baseline && Date.now() < deadline) await sleep(20)
    t.equal(await clients(), baseline, 'the Redis client was closed')
    t.equal(await probe.exists(KEY_PREFIX + inRedis), 1, 'and the data left in Redis untouched')
  })
})
