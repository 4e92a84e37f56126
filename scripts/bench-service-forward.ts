/**
 * Forwarding overhead of `_type = http`: the same small POST sent straight to an upstream and
 * through gms-gate (Basic auth on, DFM credentials out), in the same run, printed as a ratio.
 *
 *   npm run build && node dist/scripts/bench-service-forward.js [requests] [concurrency]
 */
import Fastify from 'fastify'
import { Pool } from 'undici'
import { buildServer } from '../server.js'

const requests = Number(process.argv[2] ?? 3000)
const concurrency = Number(process.argv[3] ?? 16)
const auth = `Basic ${Buffer.from('caller:caller-pass').toString('base64')}`

const upstream = Fastify()
upstream.post('/cb', async (request) => ({ ok: true, got: request.body }))
await upstream.listen({ port: 0, host: '127.0.0.1' })
const upstreamUrl = `http://127.0.0.1:${(upstream.server.address() as { port: number }).port}`

const gate = await buildServer({
  logger: false,
  options: `[service.cb]\nusername = caller\npassword = caller-pass\n_type = http\n_service = ${upstreamUrl}/cb\n_upstream = ors\n` +
    '[dfm.ors]\nusername = gms\npassword = dfm-pass\n'
})
await gate.listen({ port: 0, host: '127.0.0.1' })
const gateUrl = `http://127.0.0.1:${(gate.server.address() as { port: number }).port}`

/** Requests per second for `requests` POSTs, `concurrency` at a time. */
async function run (origin: string, path: string): Promise<number> {
  const pool = new Pool(origin, { connections: concurrency })
  let left = requests
  const started = process.hrtime.bigint()
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (left-- > 0) {
      const res = await pool.request({ method: 'POST', path, headers: { authorization: auth, 'content-type': 'application/json' }, body: '{"hello":"world"}' })
      await res.body.text()
      if (res.statusCode !== 200) throw new Error(`${origin}${path} answered ${res.statusCode}`)
    }
  }))
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  await pool.close()
  return requests / seconds
}

await run(upstreamUrl, '/cb') // warm-up
await run(gateUrl, '/genesys/1/service/cb')
const direct: number[] = []
const through: number[] = []
for (let round = 0; round < 3; round++) {
  direct.push(await run(upstreamUrl, '/cb'))
  through.push(await run(gateUrl, '/genesys/1/service/cb'))
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const d = median(direct)
const g = median(through)
console.log(`direct to upstream: ${d.toFixed(0)} req/s`)
console.log(`through gms-gate:   ${g.toFixed(0)} req/s`)
console.log(`ratio (through / direct): ${(g / d).toFixed(2)}  (${requests} requests x 3 rounds, concurrency ${concurrency}, median)`)
await gate.close()
await upstream.close()
