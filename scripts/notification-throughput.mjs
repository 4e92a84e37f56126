#!/usr/bin/env node
// Callback throughput of the Notification API (memory backend): SUBSCRIPTIONS httpcb subscriptions on
// one tag, ROUNDS publishes, against a local receiver. Prints delivered messages per second and the
// publish-to-200 latency percentiles. Needs the build: `npm run build && node scripts/notification-throughput.mjs`.
import { once } from 'node:events'
import { createServer } from 'node:http'
import { buildServer } from '../dist/server.js'

const SUBSCRIPTIONS = Number(process.env.SUBSCRIPTIONS ?? 1000)
const ROUNDS = Number(process.env.ROUNDS ?? 10)

const receiver = createServer((req, res) => {
  req.resume()
  req.on('end', () => res.end())
})
receiver.keepAliveTimeout = 60_000
receiver.listen(0, '127.0.0.1')
await once(receiver, 'listening')
const callback = `http://127.0.0.1:${receiver.address().port}/cb`

const app = await buildServer({ options: `[notification]\nmax_subscriptions = ${SUBSCRIPTIONS + 10}\n`, logger: false })
const headers = { 'content-type': 'application/json' }
for (let i = 0; i < SUBSCRIPTIONS; i++) {
  const res = await app.inject({ method: 'POST', url: '/genesys/1/notification/subscription', headers, payload: { subscriberId: `s${i}`, filter: 'bench', expire: 3600, notificationDetails: { type: 'httpcb', deviceId: callback } } })
  if (res.statusCode !== 200) throw new Error(`subscribe answered ${res.statusCode}: ${res.body}`)
}

const expected = SUBSCRIPTIONS * ROUNDS
const latencies = []
let failed = 0
const done = new Promise(resolve => {
  const check = () => { if (latencies.length + failed === expected) resolve() }
  app.gmsNotification.events.on('delivered', d => { latencies.push(d.latencyMs); check() })
  app.gmsNotification.events.on('dead-letter', () => { failed++; check() })
})
const started = process.hrtime.bigint()
let publishMs = 0
for (let r = 0; r < ROUNDS; r++) {
  const t0 = process.hrtime.bigint()
  const res = await app.inject({ method: 'POST', url: '/genesys/1/notification/publish', headers, payload: { tag: 'bench', message: `round ${r}` } })
  publishMs = Math.max(publishMs, Number(process.hrtime.bigint() - t0) / 1e6)
  if (res.json().matched !== SUBSCRIPTIONS) throw new Error(`publish matched ${res.json().matched}`)
}
await done
const seconds = Number(process.hrtime.bigint() - started) / 1e9
latencies.sort((a, b) => a - b)
const pct = p => latencies[Math.min(latencies.length - 1, Math.ceil(p / 100 * latencies.length) - 1)]
console.log(`subscriptions=${SUBSCRIPTIONS} rounds=${ROUNDS} delivered=${latencies.length} failed=${failed}`)
console.log(`throughput: ${Math.round(latencies.length / seconds)} delivered messages/s (${seconds.toFixed(2)} s)`)
console.log(`latency publish->200: p50=${pct(50)} ms p99=${pct(99)} ms max=${latencies[latencies.length - 1]} ms; slowest publish answer ${publishMs.toFixed(1)} ms`)
await app.close()
receiver.close()
