/**
 * The benchmark scenarios of issue 8, one entry each. A scenario whose feature is not on this branch
 * yet skips with a printed reason (found by asking the running app, not by guessing from files), so
 * it turns on by itself when the feature lands; where the feature's exact spelling was unknown when
 * this was written, the entry says what to check.
 */
import { spawnSync } from 'node:child_process'
import { connect } from 'node:net'
import { fileURLToPath } from 'node:url'
import { parseOptions } from '../plugins/options-file.js'
import type { TargetApp } from './bench-target.js'

/** One request autocannon repeats. */
export interface RequestSpec {
  readonly method: 'GET' | 'POST'
  readonly path: string
  readonly headers?: Readonly<Record<string, string>>
  readonly body?: string
}

/** What a scenario measures, once its target runs and its feature answered. */
export interface Prepared {
  readonly request: RequestSpec
  /** The status every response should have (others are counted as unexpected). */
  readonly expect: number
  /** Warm-up with this request instead (10b warms up without creating ids). */
  readonly warmup?: RequestSpec
}

/** Returned instead of a value when a scenario cannot run here. */
export interface Skip { readonly skip: string }
export const skip = (reason: string): Skip => ({ skip: reason })
export const isSkip = (value: unknown): value is Skip => typeof value === 'object' && value !== null && 'skip' in value

/** What a scenario needs before its target starts. */
export interface SetupContext {
  /** `redis://127.0.0.1:<port>/0` of a private redis-server, when the scenario asked for one. */
  readonly redisUrl?: string
}

/** A running target. */
export interface TargetContext extends SetupContext {
  readonly origin: string
}

/** How the target app is made: a gate options file, or one of the reference apps. */
export type TargetSpec =
  | { readonly kind: 'bare' }
  | { readonly kind: 'basic-auth' }
  | { readonly kind: 'gate', ini (ctx: SetupContext): string | Skip | Promise<string | Skip> }

interface ScenarioBase {
  /** Short id used by `--only` and in the tables (`7g` is matched by `--only 7`). */
  readonly id: string
  readonly title: string
  readonly target: TargetSpec
  /** Start a private redis-server for this scenario. */
  readonly redis?: boolean
  /** Check the feature and make the request (may create data first); a Skip says why not. */
  prepare (ctx: TargetContext): Promise<Prepared | Skip>
}

/** Throughput scenario: warm-up, then a measured window; compared with the baseline of its round. */
export interface LoadScenario extends ScenarioBase {
  readonly kind: 'load'
}

/** Memory scenario: RSS after warm-up vs after `amount` more requests. */
export interface MemoryScenario extends ScenarioBase {
  readonly kind: 'memory'
  amount (settings: Scale): number
  /** What the amount counts, for the table. */
  readonly unit: string
}

/** Reload under load: full-rate requests while the options file alternates between two versions. */
export interface ReloadScenario extends ScenarioBase {
  readonly kind: 'reload'
  readonly target: { readonly kind: 'gate', ini (ctx: SetupContext): string }
  /** The other version of the file: differs elsewhere, keeps the caller's credentials valid. */
  readonly alternateIni: string
}

export type Scenario = LoadScenario | MemoryScenario | ReloadScenario

/** Sizes that scale between `--quick` and the full run. */
export interface Scale {
  readonly memoryRequests: number
  readonly storageIds: number
  readonly reloads: number
}

// ---------------------------------------------------------------------------------------------
// Credentials and options files

export const USERNAME = 'bench'
export const PASSWORD = 'bench-secret-1'
export const REALM = 'gms-gate bench'
export const basic = (username: string, password: string): string =>
  `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`
const GOOD = basic(USERNAME, PASSWORD)
const WRONG = basic(USERNAME, 'not-the-password')

/** The apps of (1) and (2), given to the target as they are. */
export function referenceApp (kind: 'bare' | 'basic-auth'): TargetApp {
  return kind === 'bare' ? { kind } : { kind, username: USERNAME, password: PASSWORD, realm: REALM }
}

/** [server] protects /genesys/1/node and everything that inherits from it. */
const serverSection = (password: string | null): string =>
  `[server]\nrealm = ${REALM}\nusername = ${USERNAME}\n${password === null ? '' : `password = ${password}\n`}`
// Scenario 6 measures the 401 path itself: failure limits out of reach, so no 429 replaces it.
const THROTTLE_OFF = 'max_failures = 999999\nmax_failures_per_ip = 999999\n'

// The two versions scenario 9 alternates between: another service's credentials and a realm differ.
const otherService = (password: string): string => `[service.other]\nusername = other\npassword = ${password}\n_type = builtin\n_service = match-interaction\n`
const RELOAD_A = `${serverSection(PASSWORD)}\n[notification]\nrealm = Notifications A\n\n${otherService('other-a')}`
const RELOAD_B = `${serverSection(PASSWORD)}\n[notification]\nrealm = Notifications B\n\n${otherService('other-b')}`

/** Options hash of an options text (what the target reports for an applied reload). */
export const optionsHash = (ini: string): string => parseOptions(ini).hash

/**
 * A `$scrypt$...` hash of `plain` made by gms-gate itself (`hash-password`, the password on stdin), or a Skip.
 */
export function hashedSecret (plain: string): string | Skip {
  const cli = fileURLToPath(new URL('../server.js', import.meta.url))
  const res = spawnSync(process.execPath, [cli, 'hash-password', '--algorithm', 'scrypt'], { input: `${plain}\n`, encoding: 'utf8', timeout: 10_000 })
  const hash = res.stdout?.split('\n').map(line => line.trim()).find(line => line.startsWith('$scrypt$'))
  if (res.status !== 0 || hash === undefined) return skip('`gms-gate hash-password --algorithm scrypt` printed no $scrypt$ hash')
  return hash
}

// ---------------------------------------------------------------------------------------------
// Probes and requests

async function status (ctx: TargetContext, req: RequestSpec): Promise<{ status: number, body: string }> {
  const res = await fetch(ctx.origin + req.path, { method: req.method, headers: req.headers, body: req.body })
  return { status: res.status, body: await res.text() }
}

/** Make sure the request gets `expected` before measuring it: a scenario that answers wrongly is a bug, not a figure. */
async function checked (ctx: TargetContext, req: RequestSpec, expected: number): Promise<Prepared> {
  const got = await status(ctx, req)
  if (got.status !== expected) throw new Error(`${req.method} ${req.path} answered ${got.status}, expected ${expected}: ${got.body.slice(0, 200)}`)
  return { request: req, expect: expected }
}

const nodeRequest = (authorization?: string): RequestSpec =>
  ({ method: 'GET', path: '/genesys/1/node', headers: authorization === undefined ? {} : { authorization } })

const STORAGE_TTL = 3600
const STORAGE_FORM = 'firstName=Ada&lastName=Lovelace&topic=bench'
const storagePost = (ttl: number): RequestSpec => ({
  method: 'POST',
  path: `/genesys/1/storage/${ttl}`,
  headers: { authorization: GOOD, 'content-type': 'application/x-www-form-urlencoded' },
  body: STORAGE_FORM
})

/** POST one storage id, or a Skip when the Storage API is not there (issue 4); also says which status a POST answers. */
async function createStorageId (ctx: TargetContext): Promise<{ id: string, status: number } | Skip> {
  const res = await status(ctx, storagePost(STORAGE_TTL))
  if (res.status === 404) return skip('no Storage API on this branch (issue 4): POST /genesys/1/storage/<ttl> answers 404')
  if (res.status !== 200 && res.status !== 201) throw new Error(`POST /genesys/1/storage answered ${res.status}: ${res.body.slice(0, 200)}`)
  const id = (JSON.parse(res.body) as { id?: unknown }).id
  if (typeof id !== 'string') throw new Error(`POST /genesys/1/storage answered no id: ${res.body.slice(0, 200)}`)
  return { id, status: res.status }
}

/** Number of keys in a redis-server, by a raw DBSIZE (so the bench needs no Redis client of its own). */
function redisDbSize (url: string): Promise<number> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write('DBSIZE\r\n'))
    socket.once('data', data => { socket.destroy(); resolve(Number(/^:(\d+)/.exec(data.toString())?.[1] ?? NaN)) })
    socket.once('error', err => { socket.destroy(); reject(err) })
  })
}

async function storageGet (ctx: TargetContext): Promise<Prepared | Skip> {
  const created = await createStorageId(ctx)
  if (isSkip(created)) return created
  return checked(ctx, { method: 'GET', path: `/genesys/1/storage/${created.id}`, headers: { authorization: GOOD } }, 200)
}

async function storagePostRequest (ctx: TargetContext): Promise<Prepared | Skip> {
  const created = await createStorageId(ctx)
  if (isSkip(created)) return created
  return { request: storagePost(STORAGE_TTL), expect: created.status }
}

/** POST in the measured part only: the warm-up reads, so every id counted was created after it. */
async function storageIds (ctx: TargetContext): Promise<Prepared | Skip> {
  const post = await storagePostRequest(ctx)
  if (isSkip(post)) return post
  const get = await storageGet(ctx)
  if (isSkip(get)) return get
  return { ...post, warmup: get.request }
}

/** Redis storage must really be in Redis: a wrong option name would silently bench the memory backend. */
const onRedis = (prepare: (ctx: TargetContext) => Promise<Prepared | Skip>) => async (ctx: TargetContext): Promise<Prepared | Skip> => {
  const req = await prepare(ctx)
  if (isSkip(req)) return req
  if (await redisDbSize(ctx.redisUrl!) === 0) return skip('storage wrote nothing to Redis with [storage] backend = redis, redis_url = <url>: check REDIS_STORAGE in scripts/bench-scenarios.ts')
  return req
}

const MEMORY_STORAGE = `${serverSection(PASSWORD)}\n[storage]\nbackend = memory\n`
// DESIGN §5 names `backend = redis`; `redis_url` is the spelling the Service branch reads (issue 5).
const REDIS_STORAGE = (url: string): string => `${serverSection(PASSWORD)}\n[storage]\nbackend = redis\nredis_url = ${url}\n`

// ---------------------------------------------------------------------------------------------
// The table

export const SCENARIOS: readonly Scenario[] = [
  {
    id: '1',
    kind: 'load',
    title: 'bare Fastify 5, one route (the ceiling)',
    target: { kind: 'bare' },
    prepare: ctx => checked(ctx, nodeRequest(), 200)
  },
  {
    id: '2',
    kind: 'load',
    title: '@fastify/basic-auth + constant-time compare',
    target: { kind: 'basic-auth' },
    prepare: ctx => checked(ctx, nodeRequest(GOOD), 200)
  },
  {
    id: '2u',
    kind: 'load',
    title: '@fastify/basic-auth, 401 path (wrong password)',
    target: { kind: 'basic-auth' },
    prepare: ctx => checked(ctx, nodeRequest(WRONG), 401)
  },
  {
    id: '3',
    kind: 'load',
    title: 'gms-gate, auth off',
    target: { kind: 'gate', ini: () => serverSection(null) },
    prepare: ctx => checked(ctx, nodeRequest(), 200)
  },
  {
    id: '4',
    kind: 'load',
    title: 'gms-gate, plaintext secret',
    target: { kind: 'gate', ini: () => serverSection(PASSWORD) },
    prepare: ctx => checked(ctx, nodeRequest(GOOD), 200)
  },
  {
    id: '4p',
    kind: 'load',
    title: 'gms-gate, plaintext secret, 8 [port_restrictions] patterns',
    target: {
      kind: 'gate',
      // The target listens on a random port: the measured path is allowed on all of them, the others are prefixes it is checked against.
      ini: () => `${serverSection(PASSWORD)}[port_restrictions]\n/genesys/1/node = 1-65535\n${
        ['admin', 'storage', 'notification', 'service', 'resource', 'cluster', 'nodes'].map(p => `/genesys/1/${p}/* = 8100`).join('\n')}\n`
    },
    prepare: ctx => checked(ctx, nodeRequest(GOOD), 200)
  },
  {
    id: '4r',
    kind: 'load',
    title: 'gms-gate, plaintext secret, failure counters in Redis',
    // Shared counters: every authenticated request peeks at two counters in Redis (no fast path).
    target: { kind: 'gate', ini: ctx => `${serverSection(PASSWORD)}throttle_store = redis\nredis_url = ${ctx.redisUrl!}\n` },
    redis: true,
    prepare: ctx => checked(ctx, nodeRequest(GOOD), 200)
  },
  {
    id: '5',
    kind: 'load',
    title: 'gms-gate, hashed secret, warm cache',
    target: {
      kind: 'gate',
      ini: () => {
        const hash = hashedSecret(PASSWORD)
        return isSkip(hash) ? hash : serverSection(hash)
      }
    },
    // The probe is also the first verification: it warms the cache before the warm-up even starts.
    async prepare (ctx) {
      const got = await status(ctx, nodeRequest(GOOD))
      return got.status === 200 ? { request: nodeRequest(GOOD), expect: 200 } : skip(`the gate answers ${got.status} to the plaintext of a $scrypt$ password (hashed secrets not on this branch)`)
    }
  },
  {
    id: '6',
    kind: 'load',
    title: 'gms-gate, 401 path (wrong password)',
    target: { kind: 'gate', ini: () => serverSection(PASSWORD) + THROTTLE_OFF },
    prepare: ctx => checked(ctx, nodeRequest(WRONG), 401)
  },
  {
    id: '7g',
    kind: 'load',
    title: 'Storage GET, memory backend',
    target: { kind: 'gate', ini: () => MEMORY_STORAGE },
    prepare: storageGet
  },
  {
    id: '7p',
    kind: 'load',
    title: 'Storage POST, memory backend',
    target: { kind: 'gate', ini: () => MEMORY_STORAGE },
    prepare: storagePostRequest
  },
  {
    id: '8g',
    kind: 'load',
    title: 'Storage GET, Redis backend',
    target: { kind: 'gate', ini: ctx => REDIS_STORAGE(ctx.redisUrl!) },
    redis: true,
    prepare: onRedis(storageGet)
  },
  {
    id: '8p',
    kind: 'load',
    title: 'Storage POST, Redis backend',
    target: { kind: 'gate', ini: ctx => REDIS_STORAGE(ctx.redisUrl!) },
    redis: true,
    prepare: onRedis(storagePostRequest)
  },
  {
    id: '9',
    kind: 'reload',
    title: 'reload under load (options file rewritten, in place and temp+rename)',
    target: { kind: 'gate', ini: () => RELOAD_A },
    alternateIni: RELOAD_B,
    prepare: ctx => checked(ctx, nodeRequest(GOOD), 200)
  },
  {
    id: '10a',
    kind: 'memory',
    title: 'RSS after N requests vs after warm-up (gms-gate, plaintext)',
    target: { kind: 'gate', ini: () => serverSection(PASSWORD) },
    unit: 'requests',
    amount: scale => scale.memoryRequests,
    prepare: ctx => checked(ctx, nodeRequest(GOOD), 200)
  },
  {
    id: '10b',
    kind: 'memory',
    title: 'RSS with N live storage ids (memory backend)',
    // Room for the ids asked for plus the two that prepare() creates as probes: at the default
    // max_entries (100,000) the last two creates of a full run answered 507 (storage full).
    target: { kind: 'gate', ini: () => `${MEMORY_STORAGE}max_entries = 100000000\nmax_memory_bytes = 100000000000\n` },
    unit: 'storage ids',
    amount: scale => scale.storageIds,
    prepare: storageIds
  }
]
