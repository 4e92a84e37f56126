import { Redis } from 'ioredis'
import t from 'tap'
import { createRedisClient } from '../services/redis-client.js'
import { decodeValue, encodeValue, INDEX_KEY, KEY_PREFIX, RedisStore } from '../services/storage/redis-store.js'
import { newStorageId, type StoredValue } from '../services/storage/store.js'
import { hasRedisServer, NO_REDIS_REASON, startRedis, untilExpired } from './helpers/redis.js'

const quiet = { warn () {}, info () {} }
const text = (value: string): StoredValue => ({ type: 'text', value })

t.test('values round-trip through their Redis bytes, files and empty values included', async t => {
  const values: StoredValue[] = [
    text(''),
    text('Zürich ✓'),
    { type: 'file', data: Buffer.from([0, 1, 0xff]), contentType: 'image/png', filename: 'é "x".png' },
    { type: 'file', data: Buffer.alloc(0), contentType: 'application/octet-stream', filename: '' }
  ]
  for (const value of values) t.same(decodeValue(encodeValue(value)), value)
})

t.test('bytes this backend did not write decode to null', async t => {
  t.equal(decodeValue(Buffer.from('plain')), null)
  t.equal(decodeValue(Buffer.alloc(0)), null)
  t.equal(decodeValue(Buffer.from([0x66, 0, 0])), null, 'short header')
  t.equal(decodeValue(Buffer.from([0x66, 0, 0, 0, 50, 0x5b])), null, 'header past the end')
  t.equal(decodeValue(Buffer.concat([Buffer.from([0x66, 0, 0, 0, 3]), Buffer.from('{x]')])), null, 'not JSON')
  t.equal(decodeValue(Buffer.concat([Buffer.from([0x66, 0, 0, 0, 5]), Buffer.from('[1,2]')])), null, 'not strings')
})

t.test('against a redis-server', { skip: hasRedisServer ? false : NO_REDIS_REASON }, async t => {
  const redis = await startRedis()
  t.teardown(() => redis.kill())
  const probe = new Redis(redis.url, { maxRetriesPerRequest: 0 })
  t.teardown(() => probe.disconnect())
  const open = () => {
    const store = new RedisStore(createRedisClient(redis.url, quiet))
    t.teardown(() => store.close())
    return store
  }

  t.test('one hash per id, a field per key, with PEXPIRE', async t => {
    const store = open()
    const id = await store.create({ a: text('1'), b: text('2') }, 1.5)
    t.same((await probe.hkeys(KEY_PREFIX + id)).sort(), ['a', 'b'])
    const pttl = await probe.pttl(KEY_PREFIX + id)
    t.ok(pttl > 500 && pttl <= 1500, `pttl ${pttl}`)
  })

  t.test('the first command after opening waits for the connection instead of failing', async t => {
    const store = open()
    t.ok(await store.create({ a: text('1') }, 60))
  })

  t.test('an update past maxKeys is refused whole, atomically', async t => {
    const store = open()
    const id = await store.create({ a: text('1'), b: text('2') }, 60)
    await t.rejects(store.update(id, { c: text('3'), d: text('4') }, 1, { maxKeys: 3 }), { statusCode: 400, message: 'too many keys: 4 where max_keys is 3' })
    t.same(await store.getAll(id), { a: text('1'), b: text('2') })
    t.ok(await probe.pttl(KEY_PREFIX + id) > 50_000, 'ttl untouched')
    t.equal(await store.update(id, { a: text('x'), c: text('3') }, 60, { maxKeys: 3 }), true)
    t.equal(await store.update('0b9c2f9e-4b1e-4c57-9d7e-3a0f6f1d2c11', { a: text('x') }, 60), false)
  })

  t.test('keys named like Object.prototype properties are read back as plain keys', async t => {
    const store = open()
    const id = await store.create(Object.fromEntries([['__proto__', text('p')], ['constructor', text('c')]]), 60)
    const all = await store.getAll(id)
    t.same(Object.keys(all!).sort(), ['__proto__', 'constructor'])
    t.equal(Object.getPrototypeOf(all), Object.prototype)
  })

  t.test('a field this backend did not write is left out', async t => {
    const store = open()
    const id = await store.create({ a: text('1') }, 60)
    await probe.hset(KEY_PREFIX + id, 'alien', 'raw')
    t.same(await store.getAll(id), { a: text('1') })
    t.equal(await store.get(id, 'alien'), null)
  })

  t.test('close quits the connection, and a closed store answers 503', async t => {
    const store = open()
    await store.create({ a: text('1') }, 60)
    await store.close()
    await t.rejects(store.getAll('x'), { statusCode: 503, code: 'GMS_GATE_BACKEND_UNAVAILABLE' })
    await t.rejects(store.countLive(), { statusCode: 503, code: 'GMS_GATE_BACKEND_UNAVAILABLE' })
  })

  t.test('the index key is outside the prefix of the ids, so no id can name it', async t => {
    t.notOk(INDEX_KEY.startsWith(KEY_PREFIX))
    t.notOk((KEY_PREFIX + newStorageId()).startsWith(INDEX_KEY))
  })

  t.test('countLive counts ids up on create, down on delete of the id and of its last key', async t => {
    await probe.flushall()
    const store = open()
    t.equal(await store.countLive(), 0)
    const one = await store.create({ a: text('1') }, 60)
    const two = await store.create({ a: text('1'), b: text('2') }, 60)
    await store.create({}, 60)
    t.equal(await store.countLive(), 2, 'an id created without keys does not exist')
    t.equal(await store.update(two, { c: text('3') }, 60), true)
    t.equal(await store.countLive(), 2, 'an update adds no id')
    t.equal(await store.delete(one), true)
    t.equal(await store.countLive(), 1)
    t.equal(await store.delete(one), false)
    t.equal(await store.deleteKey(two, 'a'), true)
    t.equal(await store.deleteKey(two, 'nope'), false)
    t.equal(await store.countLive(), 1, 'a key left: the id lives')
    t.equal(await store.deleteKey(two, 'b'), true)
    t.equal(await store.deleteKey(two, 'c'), true)
    t.equal(await store.countLive(), 0, 'its last key gone, the id is gone')
    t.equal(await probe.zcard(INDEX_KEY), 0)
  })

  t.test('an expired id leaves the count and the index', async t => {
    await probe.flushall()
    const store = open()
    const short = await store.create({ a: text('1') }, 0.2)
    await store.create({ a: text('1') }, 60)
    t.equal(await store.countLive(), 2)
    await untilExpired(probe, KEY_PREFIX + short)
    t.equal(await store.countLive(), 1)
    t.equal(await probe.zscore(INDEX_KEY, short), null)
  })

  t.test('the index scores an id by its expiry, and an update moves it with the ttl', async t => {
    await probe.flushall()
    const store = open()
    const id = await store.create({ a: text('1') }, 0.2)
    const near = (score: string | null, ttlMs: number): boolean => Math.abs(Number(score) - (Date.now() + ttlMs)) < 1000
    t.ok(near(await probe.zscore(INDEX_KEY, id), 200), 'scored at its expiry')
    t.equal(await store.update(id, { b: text('2') }, 3600), true)
    t.ok(near(await probe.zscore(INDEX_KEY, id), 3_600_000), 'moved with the new ttl')
    t.ok(await probe.pttl(KEY_PREFIX + id) > 3_000_000, 'and the hash with it')
  })

  t.test('an update of an unknown id adds nothing to the index', async t => {
    await probe.flushall()
    const store = open()
    t.equal(await store.update(newStorageId(), { a: text('1') }, 60), false)
    t.equal(await probe.zcard(INDEX_KEY), 0)
  })

  t.test('a create drops expired index entries, so the index stays small when nobody counts', async t => {
    await probe.flushall()
    const store = open()
    const gone = [await store.create({ a: text('1') }, 0.1), await store.create({ a: text('1') }, 0.1)]
    for (const id of gone) await untilExpired(probe, KEY_PREFIX + id)
    t.equal(await probe.zcard(INDEX_KEY), 2, 'expired entries stay until something drops them')
    const kept = await store.create({ a: text('1') }, 60)
    t.same(await probe.zrange(INDEX_KEY, '0', '-1'), [kept])
  })
})
