import t, { type Test } from 'tap'
import { MemoryStore, type MemoryStoreOptions } from '../services/storage/memory-store.js'
import type { StoredValue } from '../services/storage/store.js'

const text = (value: string): StoredValue => ({ type: 'text', value })

function storeAt (t: Test, options: Partial<MemoryStoreOptions> = {}) {
  const clock = { now: 1_000_000 }
  const store = new MemoryStore({ maxEntries: 100, maxBytes: 1_000_000, now: () => clock.now, ...options })
  t.teardown(() => store.close())
  return { store, clock }
}

t.test('keys are kept under a new id and read back whole or one by one', async t => {
  const { store } = storeAt(t)
  const file: StoredValue = { type: 'file', data: Buffer.from([0, 255]), contentType: 'image/png', filename: 'a.png' }
  const id = await store.create({ a: text('1'), f: file }, 60)
  t.same(await store.getAll(id), { a: text('1'), f: file })
  t.same(await store.get(id, 'f'), file)
  t.equal(await store.get(id, 'nope'), null)
  t.equal(await store.getAll('unknown'), null)
  t.not(await store.create({ a: text('1') }, 60), id, 'each create gets its own id')
})

t.test('an id lives exactly its ttl on the store clock, with no timer of its own', async t => {
  const { store, clock } = storeAt(t)
  const id = await store.create({ a: text('1') }, 2.5)
  clock.now += 2499
  t.not(await store.getAll(id), null)
  clock.now += 1
  t.equal(await store.getAll(id), null)
  t.equal(await store.get(id, 'a'), null)
  t.equal(store.usage.entries, 0, 'dropped when read')
})

t.test('the sweep drops the expired ids nobody reads, and their bytes', async t => {
  const { store, clock } = storeAt(t)
  await store.create({ a: text('12345') }, 1)
  await store.create({ b: text('12345') }, 1)
  const kept = await store.create({ c: text('1') }, 10)
  t.same(store.usage, { entries: 3, bytes: 14 })
  clock.now += 1000
  t.equal(store.sweep(), 2)
  t.same(store.usage, { entries: 1, bytes: 2 })
  t.not(await store.getAll(kept), null)
})

t.test('countLive counts live ids only, dropping the expired ones first', async t => {
  const { store, clock } = storeAt(t)
  t.equal(await store.countLive(), 0)
  await store.create({ a: text('1') }, 1)
  const kept = await store.create({ a: text('1'), b: text('2') }, 10)
  t.equal(await store.countLive(), 2)
  clock.now += 1000
  t.equal(store.usage.entries, 2, 'not swept yet')
  t.equal(await store.countLive(), 1)
  t.equal(store.usage.entries, 1, 'swept by the count')
  await store.deleteKey(kept, 'a')
  t.equal(await store.countLive(), 1)
  await store.deleteKey(kept, 'b')
  t.equal(await store.countLive(), 0, 'its last key gone, the id is gone')
})

t.test('the sweep runs on its own every sweepIntervalMs', async t => {
  const { store, clock } = storeAt(t, { sweepIntervalMs: 10 })
  await store.create({ a: text('1') }, 1)
  clock.now += 1000
  const deadline = Date.now() + 2000
  while (store.usage.entries > 0 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 5))
  t.equal(store.usage.entries, 0)
})

t.test('update adds and overwrites keys and resets the ttl; an unknown or expired id is false', async t => {
  const { store, clock } = storeAt(t)
  const id = await store.create({ a: text('1'), b: text('2') }, 10)
  clock.now += 9000
  t.equal(await store.update(id, { b: text('two'), c: text('3') }, 10), true)
  t.same(await store.getAll(id), { a: text('1'), b: text('two'), c: text('3') })
  clock.now += 9999
  t.not(await store.getAll(id), null, 'ttl counted from the update')
  clock.now += 1
  t.equal(await store.update(id, { a: text('x') }, 10), false)
  t.equal(await store.update('unknown', { a: text('x') }, 10), false)
})

t.test('an update past maxKeys is refused whole', async t => {
  const { store, clock } = storeAt(t)
  const id = await store.create({ a: text('1'), b: text('2') }, 10)
  await t.rejects(store.update(id, { c: text('3'), d: text('4') }, 60, { maxKeys: 3 }), { statusCode: 400, code: 'GMS_GATE_TOO_MANY_KEYS', message: 'too many keys: 4 where max_keys is 3' })
  t.same(await store.getAll(id), { a: text('1'), b: text('2') })
  clock.now += 10_000
  t.equal(await store.getAll(id), null, 'and its ttl was not reset')
})

t.test('overwriting keys does not count them twice against maxKeys', async t => {
  const { store } = storeAt(t)
  const id = await store.create({ a: text('1'), b: text('2') }, 10)
  t.equal(await store.update(id, { a: text('x'), b: text('y') }, 10, { maxKeys: 2 }), true)
})

t.test('past maxEntries live ids, create answers 507; expired ids make room', async t => {
  const { store, clock } = storeAt(t, { maxEntries: 2 })
  await store.create({ a: text('1') }, 1)
  await store.create({ a: text('1') }, 5)
  await t.rejects(store.create({ a: text('1') }, 5), { statusCode: 507, code: 'GMS_GATE_STORAGE_FULL', message: 'storage is full (max_entries = 2 ids)' })
  clock.now += 1000
  t.ok(await store.create({ a: text('1') }, 5), 'the expired id was swept to make room')
})

t.test('past maxBytes, create and a growing update answer 507; deletes give the bytes back', async t => {
  const { store } = storeAt(t, { maxBytes: 20 })
  const id = await store.create({ k: text('123456789') }, 60)
  await t.rejects(store.create({ k: text('x'.repeat(11)) }, 60), { statusCode: 507, message: /max_memory_bytes = 20/ })
  await t.rejects(store.update(id, { k: text('x'.repeat(20)) }, 60), { statusCode: 507, message: /max_memory_bytes = 20/ })
  t.same(await store.get(id, 'k'), text('123456789'), 'the refused update changed nothing')
  t.equal(await store.update(id, { k: text('1') }, 60), true, 'a shrinking update always fits')
  t.same(store.usage, { entries: 1, bytes: 2 })
  t.equal(await store.delete(id), true)
  t.same(store.usage, { entries: 0, bytes: 0 })
})

t.test('file bytes, content type and name count against maxBytes', async t => {
  const { store } = storeAt(t, { maxBytes: 15 })
  await t.rejects(store.create({ f: { type: 'file', data: Buffer.alloc(4), contentType: 'text/plain', filename: 'x' } }, 60), { statusCode: 507, message: /max_memory_bytes = 15/ })
})

t.test('new limits apply to the next write and keep what is stored', async t => {
  const { store } = storeAt(t, { maxEntries: 1 })
  const id = await store.create({ a: text('1') }, 60)
  await t.rejects(store.create({ a: text('1') }, 60), { statusCode: 507, message: /max_entries = 1 ids/ })
  store.setLimits({ maxEntries: 2, maxBytes: 1_000_000 })
  t.ok(await store.create({ a: text('1') }, 60))
  t.not(await store.getAll(id), null)
})

t.test('deleteKey removes one key; removing the last one removes the id', async t => {
  const { store } = storeAt(t)
  const id = await store.create({ a: text('1'), b: text('2') }, 60)
  t.equal(await store.deleteKey(id, 'a'), true)
  t.equal(await store.deleteKey(id, 'a'), false)
  t.equal(await store.deleteKey('unknown', 'a'), false)
  t.same(await store.getAll(id), { b: text('2') })
  t.equal(await store.deleteKey(id, 'b'), true)
  t.equal(await store.getAll(id), null)
  t.same(store.usage, { entries: 0, bytes: 0 })
})

t.test('delete is false for an unknown or expired id', async t => {
  const { store, clock } = storeAt(t)
  const id = await store.create({ a: text('1') }, 1)
  clock.now += 1000
  t.equal(await store.delete(id), false)
  t.equal(await store.delete('unknown'), false)
})

t.test('an id created with no key is unknown at once, as in Redis', async t => {
  const { store } = storeAt(t)
  const id = await store.create({}, 60)
  t.equal(await store.getAll(id), null)
  t.equal(store.usage.entries, 0)
})

t.test('what getAll returns is a copy: changing it changes nothing stored', async t => {
  const { store } = storeAt(t)
  const id = await store.create({ a: text('1') }, 60)
  const copy = await store.getAll(id) as Record<string, StoredValue>
  copy.b = text('2')
  t.same(await store.getAll(id), { a: text('1') })
})

t.test('close empties the store and stops its sweep', async t => {
  const { store } = storeAt(t)
  const id = await store.create({ a: text('1') }, 60)
  await store.close()
  t.equal(await store.getAll(id), null)
  t.same(store.usage, { entries: 0, bytes: 0 })
})
