/**
 * Several gms-gate processes on one Redis, end to end: one redis-server, two real `gms-gate serve`
 * processes on one options file, real HTTP. Figures are printed as comments, never asserted.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { basic, tempDir } from './helpers/app.js'
import { auditLogLines, auditOptionsText } from './helpers/log-audit.js'
import { startReceiver } from './helpers/receiver.js'
import { openStream } from './helpers/sse.js'
import { freePort, hasRedisServer, NO_REDIS_REASON, startRedis } from './helpers/redis.js'

const CLI = fileURLToPath(new URL('../dist/server.js', import.meta.url))
const READY_TIMEOUT_MS = 15_000

// Distinctive passwords: the after-suite log audit greps every captured line for them.
const KEEPER_PW = 'Kq7-keeper-vV2'
const KEEPER_PW_NEXT = 'Kq7-keeper-rotated-Zt4'
const NOTIFIER_PW = 'Nb3-notifier-pP9'
const AGENT_PW = 'Ag5-agent-xQ1'
const IVR_PW = 'Iv8-ivr-mM3'
const GUARD_PW = 'Gd2-guard-jJ6'
const GUESS_PW = 'Gd2-guess-hH5'

/** The one options file both instances read: every backend that can live in Redis does. */
function optionsText (redisUrl: string, storage: { password: string, realm: string }): string {
  return `[server]
plaintext_passwords = allow
throttle_store = redis
redis_url = ${redisUrl}
max_failures = 3
failure_window = 60

[storage]
realm = ${storage.realm}
username = keeper
password = ${storage.password}
backend = redis
redis_url = ${redisUrl}

[notification]
username = notifier
password = ${NOTIFIER_PW}
backend = redis
redis_url = ${redisUrl}
callback_allow = 127.0.0.0/8, ::1, localhost

[service.request-interaction]
realm = GMS services
username = agent
password = ${AGENT_PW}
_type = builtin
_service = request-interaction
_ttl = 300
_access_number = 8005550100, 8005550101, 8005550102
_provide_code = true
_booking_expiration_timeout = 300

[service.match-interaction]
username = ivr
password = ${IVR_PW}
_type = builtin
_service = match-interaction

[service.guarded]
username = guard
password = ${GUARD_PW}
_type = builtin
_service = request-interaction
_access_number = 8005550200
`
}

interface LogLine { readonly msg?: string, readonly level?: number, readonly [key: string]: unknown }
interface Seen { readonly line: LogLine, readonly at: number }

/** One `gms-gate serve` child process; its stdout (pino JSON) and stderr are kept in memory only. */
class Instance {
  readonly seen: Seen[] = []
  stderr = ''
  readonly exited: Promise<unknown>
  readonly #waiting = new Set<() => void>()

  constructor (readonly name: string, readonly child: ChildProcess, readonly base: string) {
    this.exited = once(child, 'exit')
    createInterface({ input: child.stdout! }).on('line', (text) => {
      auditLogLines.push(text)
      let line: LogLine
      try {
        line = JSON.parse(text) as LogLine
      } catch {
        line = { msg: text }
      }
      this.seen.push({ line, at: performance.now() })
      for (const wake of this.#waiting) wake()
    })
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      auditLogLines.push(chunk)
      this.stderr += chunk
    })
    child.once('exit', () => { for (const wake of this.#waiting) wake() })
  }

  get running (): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  /** The first log line from index `from` on that `match` accepts, with when it arrived. */
  async waitForLine (match: (line: LogLine) => boolean, from = 0): Promise<Seen> {
    for (;;) {
      const found = this.seen.slice(from).find(s => match(s.line))
      if (found !== undefined) return found
      if (!this.running) throw new Error(`${this.name} exited (${this.child.exitCode ?? this.child.signalCode}) before the log line came; stderr: ${this.stderr}`)
      await new Promise<void>(resolve => {
        const wake = (): void => { this.#waiting.delete(wake); resolve() }
        this.#waiting.add(wake)
      })
    }
  }

  fetch (path: string, init: RequestInit = {}): Promise<Response> {
    return fetch(`${this.base}${path}`, init)
  }

  async kill (): Promise<void> {
    if (!this.running) return
    this.child.kill('SIGKILL')
    await this.exited
  }
}

type Teardown = Parameters<typeof tempDir>[0]

/** Spawn `gms-gate serve` on a free port and resolve once it logs "Server listening at". */
async function startInstance (t: Teardown, name: string, file: string): Promise<Instance> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    const child = spawn(process.execPath, [CLI, 'serve', '--config', file, '--port', String(port), '--host', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'pipe'] })
    const instance = new Instance(name, child, `http://127.0.0.1:${port}`)
    // A test process that dies early must not leave servers behind.
    const onExit = (): void => { child.kill('SIGKILL') }
    process.once('exit', onExit)
    t.teardown(async () => {
      process.off('exit', onExit)
      await instance.kill()
    })
    const deadline = setTimeout(() => child.kill('SIGKILL'), READY_TIMEOUT_MS)
    try {
      await instance.waitForLine(l => typeof l.msg === 'string' && l.msg.startsWith('Server listening at'))
      return instance
    } catch (err) {
      // The free port was taken between the probe and the listen: try another one.
      if (attempt < 3 && instance.stderr.includes('EADDRINUSE')) continue
      throw err
    } finally {
      clearTimeout(deadline)
    }
  }
}

const json = (body: unknown, authorization: string): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', authorization },
  body: JSON.stringify(body)
})
const form = (fields: Record<string, string>, authorization: string): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded', authorization },
  body: new URLSearchParams(fields).toString()
})

/** `gms_notification_delivery_attempts_total` of one instance ([server] is open: no credentials). */
async function deliveryAttempts (instance: Instance): Promise<number> {
  const text = await (await instance.fetch('/metrics')).text()
  return Number(/^gms_notification_delivery_attempts_total (\d+)$/m.exec(text)?.[1] ?? NaN)
}

const ms = (n: number): string => `${n.toFixed(1)} ms`
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

t.test('two gms-gate processes on one redis-server and one options file', { skip: hasRedisServer ? false : NO_REDIS_REASON }, async t => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`)
  const redis = await startRedis()
  t.teardown(() => redis.kill())
  const dir = await tempDir(t)
  const file = join(dir, 'gms-gate.ini')
  const first = optionsText(redis.url, { password: KEEPER_PW, realm: 'Storage' })
  auditOptionsText(first)
  await writeFile(file, first)
  const started = performance.now()
  const [a, b] = await Promise.all([startInstance(t, 'A', file), startInstance(t, 'B', file)])
  const figures: string[] = [`both instances listening ${ms(performance.now() - started)} after spawn`]
  const note = (sub: Test, figure: string): void => {
    figures.push(figure)
    sub.comment(figure)
  }
  const rx = await startReceiver(t)

  let keeper = basic('keeper', KEEPER_PW)
  const agent = basic('agent', AGENT_PW)
  const notifier = basic('notifier', NOTIFIER_PW)
  let storageId = ''
  let made: { _id: string, _access_number: string, _access_code: string } | undefined

  await t.test('storage written on A is read on B, and written on B is read on A', async t => {
    const created = await a.fetch('/genesys/1/storage/300', json({ name: 'Ada', floor: 3 }, keeper))
    t.equal(created.status, 200)
    storageId = (await created.json() as { id: string }).id
    t.same(await (await b.fetch(`/genesys/1/storage/${storageId}`, { headers: { authorization: keeper } })).json(), { name: 'Ada', floor: '3' })
    t.equal((await b.fetch(`/genesys/1/storage/${storageId}/300`, form({ note: 'from B' }, keeper))).status, 200)
    t.equal(await (await a.fetch(`/genesys/1/storage/${storageId}/note`, { headers: { authorization: keeper } })).text(), 'from B')

    // Read-after-write: each write answered by A is read at once on B.
    const latencies: number[] = []
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now()
      const id = (await (await a.fetch('/genesys/1/storage/60', json({ i }, keeper))).json() as { id: string }).id
      const read = await b.fetch(`/genesys/1/storage/${id}/i`, { headers: { authorization: keeper } })
      latencies.push(performance.now() - t0)
      if (read.status !== 200 || await read.text() !== String(i)) t.fail(`write ${i} on A not readable on B (${read.status})`)
    }
    t.pass('20 writes on A, each read back on B at once')
    // The Redis gauge is cluster-wide: both instances count the 21 ids, whichever wrote them.
    for (const instance of [a, b]) {
      const text = await (await instance.fetch('/metrics')).text()
      t.equal(/^gms_storage_ids\{backend="redis"\} (\d+)$/m.exec(text)?.[1], '21', `${instance.name} counts every live id on the Redis`)
    }
    note(t, `storage: write on A then read on B, 20 rounds: median ${ms(median(latencies))}, max ${ms(Math.max(...latencies))}`)
  })

  await t.test('a service instance created on A answers on B', async t => {
    const created = await a.fetch('/genesys/1/service/request-interaction', form({ _phone_number: '5551234', customer: 'Alice' }, agent))
    t.equal(created.status, 200)
    made = await created.json() as typeof made
    t.match(made, { _id: /^request-interaction\./, _access_number: /^80055501/, _access_code: /^\d{6}$/ })
    const onB = await b.fetch(`/genesys/1/service/${made!._id}`, { headers: { authorization: agent } })
    t.equal(onB.status, 200)
    const instance = await onB.json() as { _data_id: string }
    t.match(instance, { _id: made!._id, _service: 'request-interaction', _access_number: made!._access_number, _access_code: made!._access_code })
    t.same(await (await b.fetch(`/genesys/1/storage/${instance._data_id}`, { headers: { authorization: keeper } })).json(), { customer: 'Alice' }, 'its user data too')
    const challenged = await b.fetch(`/genesys/1/service/${made!._id}`)
    t.equal(challenged.status, 401)
    t.equal(challenged.headers.get('www-authenticate'), 'Basic realm="GMS services", charset="UTF-8"', 'B asks for the credentials of the service that created it')
  })

  await t.test('a notification published on A reaches a callback subscribed on B exactly once', async t => {
    const subscribed = await b.fetch('/genesys/1/notification/subscription', json({
      subscriberId: 'crm-1', filter: 'ors.contact.*', expire: 300, notificationDetails: { type: 'httpcb', deviceId: `${rx.base}/cb` }
    }, notifier))
    t.equal(subscribed.status, 200)
    const attemptsBefore = await deliveryAttempts(a) + await deliveryAttempts(b)
    const t0 = performance.now()
    const published = await a.fetch('/genesys/1/notification/publish', json({ tag: 'ors.contact.1', message: 'first' }, notifier))
    t.match(await published.json(), { matched: 1 })
    await rx.call('/cb', 1)
    note(t, `notification: publish on A -> callback of a subscription made on B: ${ms(performance.now() - t0)}`)
    // Not a sleep: a second event published after the first was delivered comes next, so a duplicate would be seen before it.
    await a.fetch('/genesys/1/notification/publish', json({ tag: 'ors.contact.2', message: 'marker' }, notifier))
    await rx.call('/cb', 2)
    t.same(rx.callsTo('/cb').map(c => c.body), ['first', 'marker'], 'each event delivered once')
    t.equal(await deliveryAttempts(a) + await deliveryAttempts(b) - attemptsBefore, 2, 'one callback request per event across both instances')
  })

  await t.test('failures made on B throttle the same client on A', async t => {
    const guard = basic('guard', GUARD_PW)
    t.equal((await a.fetch('/genesys/1/service/guarded', { headers: { authorization: guard } })).status, 405, 'A lets guard in (GET is the wrong method)')
    const from = b.seen.length
    for (let i = 0; i < 3; i++) {
      t.equal((await b.fetch('/genesys/1/service/guarded', { headers: { authorization: basic('guard', GUESS_PW) } })).status, 401)
    }
    await b.waitForLine(l => l.msg === 'client throttled after repeated authentication failures' && l.audit === true, from)
    const throttled = await a.fetch('/genesys/1/service/guarded', { headers: { authorization: guard } })
    t.equal(throttled.status, 429, 'A refuses even the right password: max_failures = 3 were counted on B')
    t.ok(Number(throttled.headers.get('retry-after')) > 0, 'with Retry-After')
    t.equal((await b.fetch('/genesys/1/service/guarded', { headers: { authorization: guard } })).status, 429)
    t.equal((await a.fetch(`/genesys/1/storage/${storageId}`, { headers: { authorization: keeper } })).status, 200, 'another username from the same IP is not throttled')
  })

  await t.test('an options edit is picked up by both instances', async t => {
    const hashBefore = (await (await a.fetch('/genesys/1/node')).json() as { optionsHash: string }).optionsHash
    const next = optionsText(redis.url, { password: KEEPER_PW_NEXT, realm: 'Storage rotated' })
    auditOptionsText(next)
    const [fromA, fromB] = [a.seen.length, b.seen.length]
    const temp = join(dir, '.gms-gate.ini.tmp')
    await writeFile(temp, next)
    const t0 = performance.now()
    await rename(temp, file)
    const reloaded = (l: LogLine): boolean => l.msg === 'options reloaded'
    const [onA, onB] = await Promise.all([a.waitForLine(reloaded, fromA), b.waitForLine(reloaded, fromB)])
    t.match(onA.line, { changed: ['storage'] })
    t.match(onB.line, { changed: ['storage'] })
    note(t, `options edit (write-to-temp-then-rename): "options reloaded" on A after ${ms(onA.at - t0)}, on B after ${ms(onB.at - t0)}`)

    const old = keeper
    keeper = basic('keeper', KEEPER_PW_NEXT)
    for (const instance of [a, b]) {
      t.equal((await instance.fetch(`/genesys/1/storage/${storageId}`, { headers: { authorization: keeper } })).status, 200, `${instance.name} takes the new password`)
      const refused = await instance.fetch(`/genesys/1/storage/${storageId}`, { headers: { authorization: old } })
      t.equal(refused.status, 401, `${instance.name} refuses the old one`)
      t.equal(refused.headers.get('www-authenticate'), 'Basic realm="Storage rotated", charset="UTF-8"')
    }
    const nodes = await Promise.all([a, b].map(async i => await (await i.fetch('/genesys/1/node')).json() as { id: string, optionsHash: string }))
    t.equal(nodes[0]!.optionsHash, nodes[1]!.optionsHash, 'both report the same options hash')
    t.not(nodes[0]!.optionsHash, hashBefore)
    t.not(nodes[0]!.id, nodes[1]!.id, 'each instance has its own node id')
  })

  await t.test('killing A loses nothing that B can serve', async t => {
    const subscribed = await a.fetch('/genesys/1/notification/subscription', json({
      subscriberId: 'crm-2', filter: 'ors.after.kill', expire: 300, notificationDetails: { type: 'httpcb', deviceId: `${rx.base}/after-kill` }
    }, notifier))
    t.equal(subscribed.status, 200, 'subscribed through A')
    // An SSE stream is held by the process it was opened on; the subscription behind it is in Redis.
    const sse = await b.fetch('/genesys/1/notification/subscription', json({ subscriberId: 'web-1', filter: 'chat.1', expire: 300, notificationDetails: { type: 'sse' } }, notifier))
    const sseId = (await sse.json() as { id: string }).id
    const streamOnA = await openStream(`${a.base}/genesys/1/notification/stream/${sseId}`, { authorization: notifier })
    t.teardown(() => streamOnA.close())
    await b.fetch('/genesys/1/notification/publish', json({ tag: 'chat.1', message: 'before' }, notifier))
    t.equal(JSON.parse((await streamOnA.next()).data).message, 'before', 'a stream on A gets an event published on B')

    const t0 = performance.now()
    await a.kill()
    t.equal(a.child.signalCode, 'SIGKILL')
    const stored = await b.fetch(`/genesys/1/storage/${storageId}`, { headers: { authorization: keeper } })
    const servedAt = performance.now()
    t.same(await stored.json(), { name: 'Ada', floor: '3', note: 'from B' }, 'the storage written on A')
    await t.rejects(a.fetch('/health'), 'A is gone')

    t.equal((await b.fetch(`/genesys/1/service/${made!._id}`, { headers: { authorization: agent } })).status, 200, 'the service instance created on A')
    const matched = await b.fetch('/genesys/1/service/match-interaction', form({ _access_number: made!._access_number, _access_code: made!._access_code, _phone_number: '5551234' }, basic('ivr', IVR_PW)))
    t.equal(matched.status, 200, 'the reservation made on A is matched on B')
    const { _id, _data_id: dataId } = await matched.json() as { _id: string, _data_id: string }
    t.equal(_id, made!._id)
    t.same(await (await b.fetch(`/genesys/1/storage/${dataId}`, { headers: { authorization: keeper } })).json(), { customer: 'Alice' })

    const p0 = performance.now()
    const published = await b.fetch('/genesys/1/notification/publish', json({ tag: 'ors.after.kill', message: 'still here' }, notifier))
    t.match(await published.json(), { matched: 1 })
    t.equal((await rx.call('/after-kill', 1)).body, 'still here', 'B delivers to the subscription made through A')
    const deliveredAt = performance.now()

    await streamOnA.ended
    t.pass('the stream held by A ended with it')
    const streamOnB = await openStream(`${b.base}/genesys/1/notification/stream/${sseId}`, { authorization: notifier })
    t.teardown(() => streamOnB.close())
    await b.fetch('/genesys/1/notification/publish', json({ tag: 'chat.1', message: 'after' }, notifier))
    t.equal(JSON.parse((await streamOnB.next()).data).message, 'after', 'the client reopens it on B')
    note(t, `SIGKILL of A: B answered the stored data ${ms(servedAt - t0)} after the kill (A's exit included); a publish on B reached the subscription made through A in ${ms(deliveredAt - p0)}`)
  })

  t.comment(`figures (2 processes, 1 redis-server, loopback):\n${figures.map(f => `  ${f}`).join('\n')}`)
})
