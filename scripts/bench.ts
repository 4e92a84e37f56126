/**
 * `npm run bench`: what the gate costs, as ratios to a bare Fastify route measured in the same round.
 * The server runs in its own process (scripts/bench-target.ts); autocannon runs here. The primary
 * figure is the server's CPU time per request (user+system from `process.cpuUsage()` over the
 * measured window / requests served), as throughput alone hides the cost when the client saturates
 * first. The scenarios are the table in scripts/bench-scenarios.ts.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { hasRedisServer, NO_REDIS_REASON, startRedis, type RedisProcess } from '../test/helpers/redis.js'
import {
  isSkip, optionsHash, referenceApp, SCENARIOS, skip,
  type LoadScenario, type MemoryScenario, type Prepared, type ReloadScenario, type RequestSpec, type Scale, type Scenario, type Skip
} from './bench-scenarios.js'
import { wallClock, type TargetApp, type TargetMessage, type TargetRequest } from './bench-target.js'

// ---------------------------------------------------------------------------------------------
// Settings

interface Settings extends Scale {
  /** Measured window of each load scenario, in seconds. */
  readonly duration: number
  /** Warm-up before each window, in seconds. */
  readonly warmup: number
  readonly connections: number
  /** Fixed overall request rate of the load windows (null: as fast as the server answers). */
  readonly rate: number | null
  readonly rounds: number
  readonly only: readonly string[] | null
  readonly json: string | null
  readonly markdown: boolean
  readonly quick: boolean
  /** Write a V8 CPU profile of every target process into this directory. */
  readonly cpuProf: string | null
}

const USAGE = `usage: npm run bench -- [--quick] [--only 1,4,9] [--json FILE] [--markdown]
  --quick               2 s windows, smaller memory and reload runs (for development)
  --only LIST           scenario ids (7 means 7g and 7p; 4 means 4 alone); the baseline (1) always runs
  --duration S          measured window per scenario (default 5, quick 2)
  --warmup S            warm-up before each window (default 1.5, quick 0.5)
  --connections N       autocannon connections (default 10)
  --rate R              load windows at a fixed R requests/s instead of full rate (CPU/req at one operating point)
  --rounds N            rounds of the load scenarios, interleaved (default 2)
  --memory-requests N   requests of 10a (default 1000000, quick 50000)
  --storage-ids N       live ids of 10b (default 100000, quick 10000)
  --reloads N           options rewrites of 9 (default 100, quick 20)
  --json FILE           write the raw figures
  --markdown            print the tables as Markdown (for BENCHMARKS.md)
  --cpu-prof DIR        write a .cpuprofile of each server process (open in Chrome DevTools or speedscope)`

function parseSettings (argv: string[]): Settings {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string' },
      rate: { type: 'string' },
      rounds: { type: 'string' },
      'memory-requests': { type: 'string' },
      'storage-ids': { type: 'string' },
      reloads: { type: 'string' },
      json: { type: 'string' },
      markdown: { type: 'boolean', default: false },
      'cpu-prof': { type: 'string' },
      help: { type: 'boolean', short: 'h' }
    }
  })
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`)
    process.exit(0)
  }
  const quick = values.quick === true
  const num = (name: string, raw: string | undefined, fallback: number): number => {
    if (raw === undefined) return fallback
    const n = Number(raw)
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got ${JSON.stringify(raw)}`)
    return n
  }
  return {
    quick,
    duration: num('duration', values.duration, quick ? 2 : 5),
    warmup: num('warmup', values.warmup, quick ? 0.5 : 1.5),
    connections: Math.round(num('connections', values.connections, 10)),
    rate: values.rate === undefined ? null : Math.round(num('rate', values.rate, 0)),
    rounds: Math.round(num('rounds', values.rounds, 2)),
    memoryRequests: Math.round(num('memory-requests', values['memory-requests'], quick ? 50_000 : 1_000_000)),
    storageIds: Math.round(num('storage-ids', values['storage-ids'], quick ? 10_000 : 100_000)),
    reloads: Math.round(num('reloads', values.reloads, quick ? 20 : 100)),
    only: values.only === undefined ? null : values.only.split(',').map(s => s.trim()).filter(s => s !== ''),
    json: values.json ?? null,
    markdown: values.markdown === true,
    cpuProf: values['cpu-prof'] ?? null
  }
}

/** `--only 7` selects 7g and 7p; `--only 10a` only 10a. The baseline always runs. */
function selected (only: readonly string[] | null): Scenario[] {
  if (only === null) return [...SCENARIOS]
  // `7` names the group 7g, 7p (there is no scenario 7); `4` names scenario 4 alone, not 4p or 4r.
  const exact = new Set(SCENARIOS.map(s => s.id))
  const wanted = (id: string): boolean => id === '1' || only.some(o => id === o || (!exact.has(o) && id.replace(/[a-z]+$/, '') === o))
  return SCENARIOS.filter(s => wanted(s.id))
}

// ---------------------------------------------------------------------------------------------
// The target process

interface Snapshot { readonly at: number, readonly cpuUs: number, readonly rss: number, readonly heapUsed: number, readonly served: number }

const TARGET = fileURLToPath(new URL('./bench-target.js', import.meta.url))

class Target {
  readonly child: ChildProcess
  readonly origin: string
  #nextId = 0

  private constructor (child: ChildProcess, port: number) {
    this.child = child
    this.origin = `http://127.0.0.1:${port}`
  }

  static async start (app: TargetApp, cpuProf: string | null): Promise<Target> {
    // --expose-gc only lets the memory scenarios collect before reading RSS; it costs nothing otherwise.
    const execArgv = ['--expose-gc', ...(cpuProf === null ? [] : ['--cpu-prof', '--cpu-prof-dir', cpuProf])]
    const child = fork(TARGET, [], { execArgv, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
    const ready = new Promise<number>((resolve, reject) => {
      child.on('message', (m: TargetMessage) => {
        if (m.type === 'listening') resolve(m.port)
        if (m.type === 'failed') reject(new Error(`target failed to start: ${m.error}`))
      })
      child.once('exit', code => reject(new Error(`target exited with ${code} before listening`)))
    })
    child.send({ type: 'build', app } satisfies TargetRequest)
    try {
      return new Target(child, await ready)
    } catch (err) {
      child.kill()
      throw err
    }
  }

  async snapshot (gc = false): Promise<Snapshot> {
    const id = this.#nextId++
    const reply = new Promise<Snapshot>((resolve, reject) => {
      // A target that dies mid-run fails the bench instead of leaving it waiting.
      const died = (code: number | null): void => reject(new Error(`target exited with ${code} during the run`))
      const listen = (m: TargetMessage): void => {
        if (m.type !== 'snapshot' || m.id !== id) return
        this.child.off('message', listen)
        this.child.off('exit', died)
        resolve({ at: wallClock(), cpuUs: m.cpu.user + m.cpu.system, rss: m.rss, heapUsed: m.heapUsed, served: m.served })
      }
      this.child.on('message', listen)
      this.child.once('exit', died)
    })
    this.child.send({ type: 'snapshot', id, gc } satisfies TargetRequest)
    return reply
  }

  /** Resolves at the next applied reload with that options hash (its time in the target), or null after `timeoutMs`. */
  appliedReload (hash: string, timeoutMs: number): Promise<number | null> {
    return new Promise(resolve => {
      const done = (at: number | null): void => { clearTimeout(timer); this.child.off('message', listen); resolve(at) }
      const listen = (m: TargetMessage): void => { if (m.type === 'reload' && m.hash === hash) done(m.at) }
      const timer = setTimeout(() => done(null), timeoutMs)
      this.child.on('message', listen)
    })
  }

  /** Disconnecting makes the target exit on its own (so a CPU profile gets written); a kill if it lingers. */
  async stop (): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    const exited = once(this.child, 'exit')
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000)
    this.child.disconnect()
    await exited
    clearTimeout(timer)
  }
}

// ---------------------------------------------------------------------------------------------
// Load

interface LoadRun {
  readonly result: autocannon.Result
  /** Latency of every response (any status), in µs: autocannon's own histogram keeps whole ms and 2xx only. */
  readonly latency: RecordableHistogram
}

function load (origin: string, req: RequestSpec, connections: number, until: { duration: number } | { amount: number }, rate: number | null = null): { stop (): void, done: Promise<LoadRun> } {
  const latency = createHistogram()
  let instance!: autocannon.Instance
  const done = new Promise<LoadRun>((resolve, reject) => {
    instance = autocannon({
      url: origin + req.path,
      method: req.method,
      headers: req.headers as Record<string, string> | undefined,
      body: req.body,
      connections,
      pipelining: 1,
      timeout: 10,
      sampleInt: 100,
      ...(rate === null ? {} : { overallRate: rate }),
      ...until
    }, (err, result) => err ? reject(err) : resolve({ result, latency }))
  })
  // autocannon emits (client, status, bytes, ms); its typings leave the client out.
  ;(instance as NodeJS.EventEmitter).on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => {
    latency.record(Math.max(1, Math.round(ms * 1000)))
  })
  return { stop: () => instance.stop(), done }
}

/** Figures of one measured window. */
export interface LoadFigures {
  readonly id: string
  readonly title: string
  readonly round: number
  /** Requests the server received in the window. */
  readonly served: number
  /** Server user+system CPU µs per request: the primary figure. */
  readonly cpuUsPerRequest: number
  /** Server CPU time / wall time of the window (1 = one core busy). */
  readonly serverCpuShare: number
  readonly requestsPerSecond: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly errors: number
  readonly timeouts: number
  readonly non2xx: number
  /** Responses whose status was not the scenario's expected one. */
  readonly unexpected: number
  /** Each figure over the baseline's of the same round (null without a baseline). */
  ratios?: Ratios | null
}

export interface Ratios {
  readonly cpuUsPerRequest: number
  readonly requestsPerSecond: number
  readonly p50Ms: number
  readonly p99Ms: number
  /** Null when the baseline had none. */
  readonly errors: number | null
  readonly non2xx: number | null
}

function windowFigures (s: Scenario, round: number, prepared: Prepared, run: LoadRun, before: Snapshot, after: Snapshot): LoadFigures {
  const { result, latency } = run
  const served = after.served - before.served
  const cpuUs = after.cpuUs - before.cpuUs
  const stats = (result.statusCodeStats ?? {}) as Record<string, { count?: number }>
  const responses = Object.values(stats).reduce((n, v) => n + (v.count ?? 0), 0)
  return {
    id: s.id,
    title: s.title,
    round,
    served,
    cpuUsPerRequest: served === 0 ? NaN : cpuUs / served,
    serverCpuShare: cpuUs / 1000 / (after.at - before.at),
    requestsPerSecond: result.requests.total / result.duration,
    p50Ms: latency.percentile(50) / 1000,
    p99Ms: latency.percentile(99) / 1000,
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    unexpected: responses - (stats[String(prepared.expect)]?.count ?? 0)
  }
}

async function measureLoad (s: LoadScenario, round: number, settings: Settings, target: Target, prepared: Prepared): Promise<LoadFigures> {
  await load(target.origin, prepared.warmup ?? prepared.request, settings.connections, { duration: settings.warmup }, settings.rate).done
  const before = await target.snapshot()
  const run = await load(target.origin, prepared.request, settings.connections, { duration: settings.duration }, settings.rate).done
  const after = await target.snapshot()
  return windowFigures(s, round, prepared, run, before, after)
}

// ---------------------------------------------------------------------------------------------
// Reload under load

export interface ReloadFigures {
  readonly id: string
  readonly title: string
  readonly rewrites: number
  readonly inPlace: number
  readonly renamed: number
  /** Rewrites whose version was not seen applied within 2 s. */
  readonly missed: number
  readonly reloadP50Ms: number
  readonly reloadP99Ms: number
  readonly reloadMaxMs: number
  readonly requests: number
  readonly requestsPerSecond: number
  readonly non2xx: number
  readonly errors: number
  readonly unexpected: number
  readonly cpuUsPerRequest: number
}

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

function percentile (sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil(p / 100 * sorted.length) - 1)]!
}

async function measureReload (s: ReloadScenario, settings: Settings, target: Target, prepared: Prepared, file: string, firstIni: string): Promise<ReloadFigures> {
  const versions = [s.alternateIni, firstIni]
  const running = load(target.origin, prepared.request, settings.connections, { duration: 3600 })
  await sleep(settings.warmup * 1000)
  const before = await target.snapshot()
  const latencies: number[] = []
  let missed = 0
  let inPlace = 0
  for (let i = 0; i < settings.reloads; i++) {
    const text = versions[i % 2]!
    const applied = target.appliedReload(optionsHash(text), 2000)
    // Both versions are written both ways: in place, in place, renamed, renamed, ...
    if (Math.floor(i / 2) % 2 === 0) {
      await writeFile(file, text)
      inPlace++
    } else {
      const temp = `${file}.${i}.tmp`
      await writeFile(temp, text)
      await rename(temp, file)
    }
    const written = wallClock()
    const at = await applied
    if (at === null) missed++
    else latencies.push(Math.max(0, at - written))
    // Let stray events of this write go by, so the next version's clock starts clean.
    await sleep(30)
  }
  running.stop()
  const run = await running.done
  const after = await target.snapshot()
  const w = windowFigures({ ...s, kind: 'load' } as LoadScenario, 1, prepared, run, before, after)
  latencies.sort((a, b) => a - b)
  return {
    id: s.id,
    title: s.title,
    rewrites: settings.reloads,
    inPlace,
    renamed: settings.reloads - inPlace,
    missed,
    reloadP50Ms: percentile(latencies, 50),
    reloadP99Ms: percentile(latencies, 99),
    reloadMaxMs: latencies.at(-1) ?? NaN,
    requests: run.result.requests.total,
    requestsPerSecond: w.requestsPerSecond,
    non2xx: w.non2xx,
    errors: w.errors,
    unexpected: w.unexpected,
    cpuUsPerRequest: run.result.requests.total === 0 ? NaN : (after.cpuUs - before.cpuUs) / run.result.requests.total
  }
}

// ---------------------------------------------------------------------------------------------
// Memory

export interface MemoryFigures {
  readonly id: string
  readonly title: string
  readonly amount: number
  readonly unit: string
  /** After a full GC, after the warm-up. */
  readonly rssAfterWarmupMB: number
  /** After a full GC, after `amount` more requests. */
  readonly rssAfterMB: number
  readonly rssGrowthMB: number
  readonly heapAfterWarmupMB: number
  readonly heapAfterMB: number
  /** RSS growth per unit (bytes). */
  readonly bytesPerUnit: number
  readonly non2xx: number
  readonly unexpected: number
}

const MB = 1024 * 1024

async function measureMemory (s: MemoryScenario, settings: Settings, target: Target, prepared: Prepared): Promise<MemoryFigures> {
  const amount = s.amount(settings)
  await load(target.origin, prepared.warmup ?? prepared.request, settings.connections, { duration: settings.warmup }).done
  const before = await target.snapshot(true)
  const run = await load(target.origin, prepared.request, settings.connections, { amount }).done
  const after = await target.snapshot(true)
  const w = windowFigures({ ...s, kind: 'load' } as LoadScenario, 1, prepared, run, before, after)
  return {
    id: s.id,
    title: s.title,
    amount,
    unit: s.unit,
    rssAfterWarmupMB: before.rss / MB,
    rssAfterMB: after.rss / MB,
    rssGrowthMB: (after.rss - before.rss) / MB,
    heapAfterWarmupMB: before.heapUsed / MB,
    heapAfterMB: after.heapUsed / MB,
    bytesPerUnit: (after.rss - before.rss) / amount,
    non2xx: w.non2xx,
    unexpected: w.unexpected
  }
}

// ---------------------------------------------------------------------------------------------
// One scenario: its files, its redis-server, its target, then the measurement

async function withTarget<T> (s: Scenario, settings: Settings, fn: (target: Target, prepared: Prepared, file: string, ini: string) => Promise<T>): Promise<T | Skip> {
  if (s.redis === true && !hasRedisServer) return skip(NO_REDIS_REASON)
  const dir = await mkdtemp(join(tmpdir(), 'gms-gate-bench-'))
  let redis: RedisProcess | undefined
  let target: Target | undefined
  try {
    if (s.redis === true) redis = await startRedis()
    const setup = { redisUrl: redis?.url }
    const file = join(dir, 'config.ini')
    let ini = ''
    let app: TargetApp
    if (s.target.kind === 'gate') {
      const text = await s.target.ini(setup)
      if (isSkip(text)) return text
      ini = text
      await writeFile(file, ini)
      app = { kind: 'gate', configPath: file }
    } else {
      app = referenceApp(s.target.kind)
    }
    target = await Target.start(app, settings.cpuProf)
    const prepared = await s.prepare({ ...setup, origin: target.origin })
    if (isSkip(prepared)) return prepared
    return await fn(target, prepared, file, ini)
  } finally {
    await target?.stop()
    await redis?.kill()
    await rm(dir, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------------------------------------
// Report

export interface BenchReport {
  readonly machine: { readonly nproc: number, readonly cpu: string, readonly node: string, readonly platform: string }
  readonly settings: Omit<Settings, 'json' | 'markdown' | 'cpuProf'>
  readonly startedAt: string
  readonly seconds: number
  readonly load: LoadFigures[]
  readonly reload: ReloadFigures[]
  readonly memory: MemoryFigures[]
  readonly skipped: Array<{ id: string, title: string, reason: string }>
}

function addRatios (figures: LoadFigures[]): void {
  for (const f of figures) {
    const base = figures.find(b => b.id === '1' && b.round === f.round)
    const over = (a: number, b: number): number => a / b
    f.ratios = base === undefined
      ? null
      : {
          cpuUsPerRequest: over(f.cpuUsPerRequest, base.cpuUsPerRequest),
          requestsPerSecond: over(f.requestsPerSecond, base.requestsPerSecond),
          p50Ms: over(f.p50Ms, base.p50Ms),
          p99Ms: over(f.p99Ms, base.p99Ms),
          errors: base.errors === 0 ? null : over(f.errors, base.errors),
          non2xx: base.non2xx === 0 ? null : over(f.non2xx, base.non2xx)
        }
  }
}

const fixed = (n: number, digits: number): string => Number.isFinite(n) ? n.toFixed(digits) : '-'
const ratio = (n: number | null | undefined): string => n === null || n === undefined || !Number.isFinite(n) ? '-' : `${n.toFixed(2)}×`

function table (head: string[], rows: string[][], markdown: boolean): string {
  if (markdown) {
    const line = (cells: string[]): string => `| ${cells.join(' | ')} |`
    return [line(head), line(head.map((_, i) => i < 2 ? '---' : '---:')), ...rows.map(line)].join('\n')
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map(r => r[i]!.length)))
  const line = (cells: string[]): string => cells.map((c, i) => i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)).join('  ').trimEnd()
  return [line(head), widths.map(w => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}

/** Issue 8's targets: CPU per request as a ratio to (1), and better than the bare plugin. */
const CPU_TARGETS: ReadonlyArray<{ id: string, max: number, plugin: string }> = [
  { id: '4', max: 1.10, plugin: '2' },
  { id: '5', max: 1.15, plugin: '2' },
  // The 401 path is compared with the plugin's own 401 path.
  { id: '6', max: 1.10, plugin: '2u' }
]
const P99_TARGET = 1.2
const RELOAD_P99_TARGET_MS = 100

/** One row per target that has a figure: the figure of each round and whether every round met it. */
export function targetRows (report: BenchReport): string[][] {
  const rows: string[][] = []
  const rounds = [...new Set(report.load.map(f => f.round))]
  const figure = (id: string, round: number): LoadFigures | undefined => report.load.find(f => f.id === id && f.round === round)
  const verdict = (oks: boolean[]): string => oks.every(Boolean) ? 'met' : 'missed'
  for (const { id, max, plugin } of CPU_TARGETS) {
    const per = rounds.map(r => [figure(id, r)?.ratios?.cpuUsPerRequest, figure(plugin, r)?.ratios?.cpuUsPerRequest] as const)
      .filter((p): p is readonly [number, number | undefined] => p[0] !== undefined)
    if (per.length === 0) continue
    rows.push([`(${id}) CPU/req ≤ ${max.toFixed(2)} × (1) and < (${plugin})`,
      per.map(([g, b]) => `${ratio(g)} vs (${plugin}) ${ratio(b)}`).join('; '),
      verdict(per.map(([g, b]) => g <= max && (b === undefined || g < b)))])
  }
  for (const { id } of CPU_TARGETS) {
    const per = rounds.map(r => figure(id, r)?.ratios?.p99Ms).filter((p): p is number => p !== undefined)
    if (per.length === 0) continue
    rows.push([`(${id}) p99 ≤ ${P99_TARGET} × (1)`, per.map(ratio).join('; '), verdict(per.map(p => p <= P99_TARGET))])
  }
  for (const r of report.reload) {
    rows.push([`(${r.id}) no failed request under reload`, `${r.non2xx} non-2xx, ${r.errors} errors`, verdict([r.non2xx === 0 && r.errors === 0])])
    rows.push([`(${r.id}) reload p99 < ${RELOAD_P99_TARGET_MS} ms`, `${fixed(r.reloadP99Ms, 1)} ms, ${r.missed} missed`, verdict([r.reloadP99Ms < RELOAD_P99_TARGET_MS && r.missed === 0])])
  }
  return rows
}

/** The tables, as text or Markdown. */
export function formatReport (report: BenchReport, markdown: boolean): string {
  const out: string[] = []
  const title = (t: string): string => markdown ? `### ${t}` : `== ${t}`
  if (report.load.length > 0) {
    out.push(title('Load: server CPU per request and latency, as ratios to (1) in the same round'))
    out.push(table(
      ['id', 'scenario', 'round', 'CPU µs/req', '× (1)', 'req/s', '× (1)', 'p50 ms', '× (1)', 'p99 ms', '× (1)', 'srv CPU', 'errors', 'non-2xx', 'unexpected'],
      report.load.map(f => [
        f.id, f.title, String(f.round),
        fixed(f.cpuUsPerRequest, 1), ratio(f.ratios?.cpuUsPerRequest),
        fixed(f.requestsPerSecond, 0), ratio(f.ratios?.requestsPerSecond),
        fixed(f.p50Ms, 3), ratio(f.ratios?.p50Ms),
        fixed(f.p99Ms, 3), ratio(f.ratios?.p99Ms),
        `${fixed(f.serverCpuShare * 100, 0)}%`,
        String(f.errors), String(f.non2xx), String(f.unexpected)
      ]),
      markdown))
  }
  if (report.reload.length > 0) {
    out.push('', title('Reload under load'))
    out.push(table(
      ['id', 'scenario', 'rewrites (in place / renamed)', 'missed', 'reload p50 ms', 'reload p99 ms', 'max ms', 'requests', 'req/s', 'non-2xx', 'errors'],
      report.reload.map(r => [
        r.id, r.title, `${r.rewrites} (${r.inPlace} / ${r.renamed})`, String(r.missed),
        fixed(r.reloadP50Ms, 1), fixed(r.reloadP99Ms, 1), fixed(r.reloadMaxMs, 1),
        String(r.requests), fixed(r.requestsPerSecond, 0), String(r.non2xx), String(r.errors)
      ]),
      markdown))
  }
  if (report.memory.length > 0) {
    out.push('', title('Memory (RSS and heap after a full GC)'))
    out.push(table(
      ['id', 'scenario', 'N', 'RSS after warm-up MB', 'RSS after N MB', 'growth MB', 'bytes / unit', 'heap MB (warm-up → N)', 'non-2xx'],
      report.memory.map(m => [
        m.id, m.title, `${m.amount} ${m.unit}`, fixed(m.rssAfterWarmupMB, 1), fixed(m.rssAfterMB, 1), fixed(m.rssGrowthMB, 1),
        fixed(m.bytesPerUnit, 1), `${fixed(m.heapAfterWarmupMB, 1)} → ${fixed(m.heapAfterMB, 1)}`, String(m.non2xx)
      ]),
      markdown))
  }
  const targets = targetRows(report)
  if (targets.length > 0) {
    out.push('', title('Targets (issue 8): figures to report, not pass/fail tests'))
    out.push(table(['target', 'figure (round 1; round 2)', 'verdict'], targets, markdown))
  }
  if (report.skipped.length > 0) {
    out.push('', title('Skipped'))
    for (const s of report.skipped) out.push(`${markdown ? '- ' : ''}(${s.id}) ${s.title}: ${s.reason}`)
  }
  const { machine, settings } = report
  out.push('', `${markdown ? '' : '# '}${machine.nproc} × ${machine.cpu}, node ${machine.node}; ${settings.rounds} round(s), ${settings.duration} s windows after ${settings.warmup} s warm-up, ${settings.connections} connections${settings.rate === null ? '' : ` at ${settings.rate} req/s`}; ${fixed(report.seconds, 0)} s in all`)
  return out.join('\n') + '\n'
}

function machine (): BenchReport['machine'] {
  const list = cpus()
  return { nproc: list.length, cpu: list[0]?.model.trim() ?? 'unknown', node: process.version, platform: `${process.platform} ${process.arch}` }
}

// ---------------------------------------------------------------------------------------------
// Main

async function main (argv: string[]): Promise<void> {
  const settings = parseSettings(argv)
  const scenarios = selected(settings.only)
  const started = wallClock()
  const report: BenchReport = {
    machine: machine(),
    settings: (({ json: _j, markdown: _m, cpuProf: _c, ...rest }) => rest)(settings),
    startedAt: new Date().toISOString(),
    seconds: 0,
    load: [],
    reload: [],
    memory: [],
    skipped: []
  }
  const skipped = new Set<string>()
  const note = (s: Scenario, what: string): void => { process.stderr.write(`bench: (${s.id}) ${s.title}: ${what}\n`) }
  const skipOrKeep = <T>(s: Scenario, value: T | Skip): T | null => {
    if (!isSkip(value)) return value
    if (!skipped.has(s.id)) {
      skipped.add(s.id)
      report.skipped.push({ id: s.id, title: s.title, reason: value.skip })
      note(s, `skipped: ${value.skip}`)
    }
    return null
  }

  const loads = scenarios.filter((s): s is LoadScenario => s.kind === 'load')
  for (let round = 1; round <= settings.rounds; round++) {
    for (const s of loads) {
      if (skipped.has(s.id)) continue
      note(s, `round ${round}`)
      const figures = skipOrKeep(s, await withTarget(s, settings, (target, prepared) => measureLoad(s, round, settings, target, prepared)))
      if (figures !== null) report.load.push(figures)
    }
  }
  addRatios(report.load)
  for (const s of scenarios) {
    if (s.kind === 'reload') {
      note(s, `${settings.reloads} rewrites`)
      const figures = skipOrKeep(s, await withTarget(s, settings, (target, prepared, file, ini) => measureReload(s, settings, target, prepared, file, ini)))
      if (figures !== null) report.reload.push(figures)
    } else if (s.kind === 'memory') {
      note(s, `${s.amount(settings)} ${s.unit}`)
      const figures = skipOrKeep(s, await withTarget(s, settings, (target, prepared) => measureMemory(s, settings, target, prepared)))
      if (figures !== null) report.memory.push(figures)
    }
  }
  ;(report as { seconds: number }).seconds = (wallClock() - started) / 1000

  process.stdout.write(formatReport(report, settings.markdown))
  if (settings.json !== null) await writeFile(settings.json, JSON.stringify(report, null, 2) + '\n')
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exit(1)
})
