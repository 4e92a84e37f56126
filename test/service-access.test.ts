import t from 'tap'
import { newInstanceId, randomAccessCode, reserveAccess, serviceOfInstance } from '../services/service/access.js'
import { MemoryStateStore } from '../services/service/state-store.js'

const holder = (id: string) => ({ id, dataId: `data-${id}`, phoneNumber: '555' })

t.test('an instance id names the service that created it', async t => {
  const id = newInstanceId('request-interaction')
  t.equal(serviceOfInstance(id), 'request-interaction')
  t.equal(serviceOfInstance('my.dotted.svc.' + id.split('.').pop()!), 'my.dotted.svc')
})

t.test('a string that is not an instance id names no service', async t => {
  t.equal(serviceOfInstance('request-interaction'), undefined)
  t.equal(serviceOfInstance('x.short'), undefined)
  t.equal(serviceOfInstance('.AAAAAAAAAAAAAAAAAAAAAA'), undefined)
})

t.test('an access code has exactly the asked number of digits', async t => {
  for (const length of [1, 6, 9, 10, 15]) t.match(randomAccessCode(length), new RegExp(`^\\d{${length}}$`))
})

t.test('without codes a pool hands out each number once, then is exhausted', async t => {
  const store = new MemoryStateStore()
  t.teardown(() => store.close())
  const request = { numbers: ['100', '101'], codeLength: 0, ttlMs: 30_000 }
  const a = await reserveAccess(store, { ...request, holder: holder('a') })
  const b = await reserveAccess(store, { ...request, holder: holder('b') })
  t.same(new Set([a?.number, b?.number]), new Set(['100', '101']))
  t.equal(await reserveAccess(store, { ...request, holder: holder('c') }), null)
})

t.test('an expired reservation frees its number', async t => {
  let now = 1_000_000
  const store = new MemoryStateStore(() => now)
  t.teardown(() => store.close())
  const request = { numbers: ['100'], codeLength: 0, ttlMs: 30_000 }
  t.ok(await reserveAccess(store, { ...request, holder: holder('a') }))
  now += 29_999
  t.equal(await reserveAccess(store, { ...request, holder: holder('b') }), null)
  now += 1
  t.same(await reserveAccess(store, { ...request, holder: holder('c') }), { number: '100', code: '' })
})

t.test('1,000 concurrent reservations with codes on a two-number pool are all distinct', async t => {
  const store = new MemoryStateStore()
  t.teardown(() => store.close())
  const grants = await Promise.all(Array.from({ length: 1000 }, (_, i) =>
    reserveAccess(store, { numbers: ['100', '101'], codeLength: 4, ttlMs: 30_000, holder: holder(String(i)) })))
  t.notOk(grants.includes(null), 'no reservation failed')
  t.equal(new Set(grants.map(g => `${g!.number}:${g!.code}`)).size, 1000)
})

t.test('take finds and releases a reservation once, and only for its phone', async t => {
  const store = new MemoryStateStore()
  t.teardown(() => store.close())
  await store.claim('100', '1234', holder('a'), 30_000)
  t.equal(await store.take('100', '1234', '999'), null, 'another phone does not match')
  t.same(await store.take('100', '1234', '555'), holder('a'))
  t.equal(await store.take('100', '1234', '555'), null, 'released')
})

t.test('release leaves a reservation another holder made', async t => {
  const store = new MemoryStateStore()
  t.teardown(() => store.close())
  await store.claim('100', '', holder('b'), 30_000)
  await store.release('100', '', 'a')
  t.same(await store.take('100', '', undefined), holder('b'))
})
