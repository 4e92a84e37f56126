import { writeFile } from 'node:fs/promises'
import t from 'tap'
import { callbackRefusal, parseCallbackAllow } from '../services/notification/callback-allow.js'
import { backoffMs } from '../services/notification/delivery.js'
import { matchesFilter } from '../services/notification/filter.js'
import { MemorySubscriptionStore } from '../services/notification/memory-store.js'
import { compileNotificationSettings } from '../services/notification/settings.js'
import { parseOptions } from '../plugins/options-file.js'
import { loadOptionsText } from '../plugins/options-watch.js'
import { appOnFile } from './helpers/app.js'

const settings = (text: string) => compileNotificationSettings(parseOptions(`[notification]\n${text}`, 'test.ini'))

t.test('a filter matches its exact tag, a trailing-* prefix, a * anywhere, and * alone every tag', async t => {
  t.ok(matchesFilter('ors.contact.1', 'ors.contact.1'))
  t.notOk(matchesFilter('ors.contact.1', 'ors.contact.12'))
  t.ok(matchesFilter('ors.contact.*', 'ors.contact.12'))
  t.ok(matchesFilter('ors.contact.*', 'ors.contact.'))
  t.notOk(matchesFilter('ors.contact.*', 'ors.contact'))
  t.ok(matchesFilter('*', 'anything'))
  t.ok(matchesFilter('ors.*.done', 'ors.contact.1.done'))
  t.notOk(matchesFilter('ors.*.done', 'ors.done'))
  t.notOk(matchesFilter('a*b*c', 'acb'))
})

t.test('the default callback_allow admits loopback only', async t => {
  const allow = settings('').callbackAllow
  const never = async (): Promise<string[]> => { throw new Error('no DNS in this test') }
  t.equal(await callbackRefusal(new URL('http://127.0.0.1:9/x'), allow, never), null)
  t.equal(await callbackRefusal(new URL('http://[::1]:9/x'), allow, never), null)
  t.equal(await callbackRefusal(new URL('http://localhost:9/x'), allow, never), null)
  t.match(await callbackRefusal(new URL('http://10.0.0.1/x'), allow, never), /10\.0\.0\.1 is outside/)
  t.match(await callbackRefusal(new URL('http://[::ffff:10.0.0.1]/x'), allow, never), /outside/)
})

t.test('a host name not listed must resolve only to allowed addresses', async t => {
  const allow = parseCallbackAllow('192.168.0.0/16, *.example.com')
  const dns = (map: Record<string, string[]>) => async (host: string) => map[host] ?? []
  t.equal(await callbackRefusal(new URL('http://cb.example.com/'), allow, dns({})), null)
  t.equal(await callbackRefusal(new URL('http://inside.lan/'), allow, dns({ 'inside.lan': ['192.168.1.5'] })), null)
  t.match(await callbackRefusal(new URL('http://rebind.test/'), allow, dns({ 'rebind.test': ['192.168.1.5', '10.0.0.1'] })), /resolves to 10\.0\.0\.1/)
  t.match(await callbackRefusal(new URL('http://nowhere.test/'), allow, async () => { throw new Error('ENOTFOUND') }), /does not resolve/)
})

t.test('retry waits double from retry_initial_ms up to retry_max_ms', async t => {
  const retry = { attempts: 6, initialMs: 100, maxMs: 500, timeoutMs: 1000 }
  t.same([1, 2, 3, 4, 5].map(n => backoffMs(n, retry)), [100, 200, 400, 500, 500])
})

t.test('[notification] defaults follow GMS where it has one', async t => {
  const s = compileNotificationSettings(parseOptions('', 'empty.ini'))
  t.equal(s.backend, 'memory')
  t.equal(s.defaultExpiration, 30)
  t.same([...s.pushEnabled], ['httpcb', 'sse'])
  t.equal(s.retry.attempts, 3)
})

t.test('setting customhttp_url enables customhttp by default', async t => {
  t.ok(settings('customhttp_url = http://127.0.0.1:9/push\n').pushEnabled.has('customhttp'))
})

t.test('a bad [notification] value is an OptionsError naming file and line', async t => {
  const cases: Array<[string, number, RegExp]> = [
    ['backend = mongo\n', 2, /backend in \[notification\] must be "memory" or "redis"/],
    ['backend = redis\n', 2, /redis_url is not set/],
    ['redis_url = http://x\n', 2, /redis_url in \[notification\] must be a redis: or rediss: URL/],
    ['default_expiration = soon\n', 2, /default_expiration in \[notification\] must be a whole number/],
    ['\npush_enabled = httpcb, pigeon\n', 3, /unknown delivery type "pigeon"/],
    ['push_enabled = customhttp\n', 2, /customhttp_url is not set/],
    ['retry_attempts = 0\n', 2, /retry_attempts/],
    ['retry_initial_ms = 100\nretry_max_ms = 10\n', 3, /retry_max_ms smaller/],
    ['callback_allow = 10.0.0.0/99\n', 2, /callback_allow in \[notification\] has an invalid network/],
    ['callback_allow = http://x\n', 2, /neither an IP, a CIDR nor a host name/]
  ]
  for (const [text, line, reason] of cases) {
    t.throws(() => settings(text), { name: 'OptionsError', file: 'test.ini', line, message: reason }, text)
  }
})

t.test('GMS push types this gate does not implement are ignored, as GMS ignores unknown ones', async t => {
  t.same([...settings('push_enabled = ios, comet, httpcb\n').pushEnabled], ['httpcb'])
})

t.test('the compiled options carry the notification settings, and a bad value refuses the whole file', async t => {
  t.equal(loadOptionsText('[notification]\nmax_subscriptions = 7\n').notification.maxSubscriptions, 7)
  t.throws(() => loadOptionsText('[notification]\nmax_subscriptions = -1\n'), { name: 'OptionsError', line: 2 })
})

t.test('[notification] options are known to the parser: no unknown-option warning', async t => {
  t.same(parseOptions('[notification]\nbackend = memory\ncallback_allow = ::1\n').warnings, [])
})

t.test('the memory store forgets a subscription once its time is up', async t => {
  let now = 1_000_000
  const store = new MemorySubscriptionStore(() => now)
  t.teardown(() => store.close())
  const sub = (await store.add({ subscriberId: 's', filter: 'a.*', type: 'sse', expire: 10 }, 10))!
  t.equal((await store.matching('a.b')).length, 1)
  now += 10_000
  t.equal(await store.get(sub.id), null)
  t.same(await store.matching('a.b'), [])
  t.ok(await store.add({ subscriberId: 's', filter: 'a', type: 'sse', expire: 10 }, 1), 'the expired one no longer counts against the limit')
})

t.test('the memory store counts live subscriptions only, dropping the expired ones first', async t => {
  let now = 1_000_000
  const store = new MemorySubscriptionStore(() => now)
  t.teardown(() => store.close())
  t.equal(await store.countLive(), 0)
  await store.add({ subscriberId: 's', filter: 'a', type: 'sse', expire: 1 }, 10)
  const kept = (await store.add({ subscriberId: 's', filter: 'a.*', type: 'sse', expire: 10 }, 10))!
  t.equal(await store.countLive(), 2)
  now += 1000
  t.equal(await store.countLive(), 1)
  await store.delete(kept.id)
  t.equal(await store.countLive(), 0)
})

t.test('a reloaded [notification] applies to the next request, and a bad value keeps the last good one', async t => {
  const h = await appOnFile(t, '[notification]\nmax_subscriptions = 1\n')
  const subscribe = () => h.app.inject({ method: 'POST', url: '/genesys/1/notification/subscription', headers: { 'content-type': 'application/json' }, payload: '{"subscriberId":"s","filter":"x","notificationDetails":{"type":"sse"}}' })
  t.equal((await subscribe()).statusCode, 200)
  t.equal((await subscribe()).statusCode, 429)
  const reloaded = h.nextReload()
  await writeFile(h.file, '[notification]\nmax_subscriptions = 5\n')
  await reloaded
  t.equal((await subscribe()).statusCode, 200)
  const rejected = h.nextReloadError()
  await writeFile(h.file, '[notification]\nmax_subscriptions = lots\n')
  t.match((await rejected).error, { line: 2, reason: /max_subscriptions/ })
  t.equal((await subscribe()).statusCode, 200, 'the limit of 5 is still in force')
})
