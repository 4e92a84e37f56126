import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { tempDir } from './helpers/app.js'

// The built script, as `npm run bench` runs it (npm test builds first). Shape only, never timing.
const BENCH = fileURLToPath(new URL('../dist/scripts/bench.js', import.meta.url))

async function bench (...args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  // Without tap's process tracking and coverage in the bench and its servers: they would double the run for nothing.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS' && k !== 'NODE_V8_COVERAGE' && !k.startsWith('_TAPJS_')))
  const child = spawn(process.execPath, [BENCH, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const [code] = await once(child, 'exit') as [number | null]
  return { code, stdout, stderr }
}

const finite = (n: unknown): boolean => typeof n === 'number' && Number.isFinite(n)

t.test('a fraction-of-a-second bench run reports every figure of each kind of scenario', async t => {
  const json = join(await tempDir(t), 'bench.json')
  const res = await bench('--duration', '0.25', '--warmup', '0.05', '--only', '4,7g,9,10a', '--reloads', '4',
    '--memory-requests', '300', '--json', json, '--markdown')
  t.equal(res.code, 0, res.stderr)
  const report = JSON.parse(await readFile(json, 'utf8'))

  t.same(report.load.map((f: { id: string, round: number }) => `${f.id}/${f.round}`).filter((k: string) => !k.startsWith('7g')),
    ['1/1', '4/1', '1/2', '4/2'], 'the baseline always runs; every scenario runs in each round, interleaved')
  for (const f of report.load) {
    for (const key of ['cpuUsPerRequest', 'requestsPerSecond', 'p50Ms', 'p99Ms', 'serverCpuShare']) t.ok(finite(f[key]), `${f.id}/${f.round} ${key}`)
    for (const key of ['cpuUsPerRequest', 'requestsPerSecond', 'p50Ms', 'p99Ms']) t.ok(finite(f.ratios[key]), `${f.id}/${f.round} ratio ${key}`)
    t.equal(f.unexpected, 0, `${f.id}/${f.round} answered as expected`)
  }
  t.equal(report.load.find((f: { id: string }) => f.id === '1').ratios.cpuUsPerRequest, 1, 'the baseline is its own unit')

  const storage = report.load.some((f: { id: string }) => f.id === '7g') || report.skipped.some((s: { id: string }) => s.id === '7g')
  t.ok(storage, 'a scenario whose feature is missing is skipped with a reason, not dropped')
  for (const s of report.skipped) t.match(s.reason, /\w/)

  const [reload] = report.reload
  t.match(reload, { id: '9', rewrites: 4, inPlace: 2, renamed: 2, non2xx: 0 })
  t.ok(finite(reload.reloadP99Ms), 'reload latency measured')
  const [memory] = report.memory
  t.match(memory, { id: '10a', amount: 300, unit: 'requests', non2xx: 0 })
  t.ok(finite(memory.rssGrowthMB), 'RSS growth measured')

  t.match(res.stdout, /\| id \| scenario \| round \| CPU µs\/req \| × \(1\) \|/, 'Markdown load table')
  t.match(res.stdout, /### Reload under load/)
  t.match(res.stdout, /### Memory/)
})
