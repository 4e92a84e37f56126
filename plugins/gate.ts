/**
 * The gate: an `onRequest` hook that finds the request's section, looks up its compiled policy in
 * the snapshot in force, and answers GMS's 401 challenge unless the credentials match.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { OptionsSnapshot } from './options-file.js'
import { parseBasicAuthorization } from './credentials.js'
import { HttpsRequiredError, ThrottledError } from './errors.js'
import { createFailureThrottle, loggableUsername } from './throttle.js'
import { sectionForPath, type AuthOn, type InstanceSectionLookup, type PolicyTable, type SectionPolicy } from './policy.js'
import { compileOptions, loadOptionsFile, loadOptionsText, logWarnings, OptionsWatcher, type LoadedOptions } from './options-watch.js'
import { portDecision } from './port-restrictions.js'
import { hashLimit } from './hash-limit.js'

/** How a route names its section: a fixed one, or computed from the request (the Service API). */
export type RouteSection =
  | 'server' | 'storage' | 'notification'
  | ((request: FastifyRequest, table: PolicyTable, instanceSection: InstanceSectionLookup | undefined) => SectionPolicy)

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The section whose policy protects this route; routes without one are mapped by path prefix. */
    gmsSection?: RouteSection
  }
  interface FastifyInstance {
    gmsGate: GmsGateHandle
  }
  interface FastifyRequest {
    /** The options snapshot this request started with (null only before the gate ran). */
    gmsOptions: LoadedOptions | null
    /** The policy that let this request through (null on an open path). */
    gmsPolicy: SectionPolicy | null
    /** The authenticated username, when the section asked for credentials. */
    gmsUser: string | null
  }
}

/** Requests the gate decided for one section, by outcome (plain numbers: the hot path only increments). */
export interface SectionCounts {
  /** Credentials checked and accepted. */
  allowed: number
  /** Answered 401 (no credentials, or wrong ones). */
  denied: number
  /** Answered 429 (too many failures). */
  throttled: number
  /** No credentials asked (auth off for the section, or a path no section protects: section `none`). */
  open: number
}

/** What the gate offers the rest of the app. */
export interface GmsGateHandle {
  /** The options in force now. */
  current (): LoadedOptions
  /** The options the app started with: what start-only options (listen addresses, stores) follow. */
  readonly started: LoadedOptions
  /** The file watcher, when the options come from a watched file. */
  readonly watcher: OptionsWatcher | null
  /** Let the Service API say which `[service.<name>]` created an instance id. */
  setInstanceSectionLookup (lookup: InstanceSectionLookup): void
  /** Requests decided since start, by section (read by the metrics plugin when scraped). */
  readonly requestCounts: ReadonlyMap<string, SectionCounts>
  /** Requests answered 404 because of the port they came in on (`[port_restrictions]`, `metrics_port`). */
  readonly portRefusedCount: number
}

/** Where the gate's options come from. */
export interface GmsGateOptions {
  /** An INI file, read at registration and (unless `watch: false`) hot-reloaded. */
  configPath?: string
  /** Options as INI text or an already parsed snapshot (no reload). */
  options?: string | OptionsSnapshot
  /** Watch `configPath` for changes (default true); with false, only SIGHUP or `watcher.reload()` reloads. */
  watch?: boolean
  /** Reload on SIGHUP (default false: the CLI turns it on; an embedding app decides for itself). */
  sighup?: boolean
  /** Debounce for file events in ms (default 20). */
  debounceMs?: number
  /** Options already loaded from `configPath` (buildServer reads them first for TLS and proxy settings). */
  preloaded?: LoadedOptions
}

function policyFor (request: FastifyRequest, table: PolicyTable, lookup: InstanceSectionLookup | undefined): SectionPolicy | null {
  const declared = request.routeOptions.config.gmsSection
  if (declared === undefined) return sectionForPath(request.url, table, lookup)
  if (typeof declared === 'function') return declared(request, table, lookup)
  return table[declared]
}

async function gmsGatePlugin (fastify: FastifyInstance, opts: GmsGateOptions): Promise<void> {
  let initial: LoadedOptions
  if (opts.preloaded !== undefined) initial = opts.preloaded
  else if (opts.configPath !== undefined) initial = await loadOptionsFile(opts.configPath)
  else if (typeof opts.options === 'string') initial = loadOptionsText(opts.options)
  else if (opts.options !== undefined) initial = compileOptions(opts.options)
  else throw new Error('gmsGate needs { configPath } or { options }')
  logWarnings(fastify.log, initial.options)

  let watcher: OptionsWatcher | null = null
  let loaded = initial
  if (opts.configPath !== undefined) {
    const w = new OptionsWatcher(opts.configPath, initial, { logger: fastify.log, debounceMs: opts.debounceMs })
    w.on('reload', () => {
      loaded = w.current
      hashLimit.configure(loaded.security.hashLimit)
    })
    // Without file events (watch: false, or a filesystem without inotify) SIGHUP still reloads.
    if (opts.watch !== false) await w.start()
    watcher = w
  }
  let instanceSection: InstanceSectionLookup | undefined
  const requestCounts = new Map<string, SectionCounts>()
  const countsFor = (section: string): SectionCounts => {
    let counts = requestCounts.get(section)
    if (counts === undefined) requestCounts.set(section, counts = { allowed: 0, denied: 0, throttled: 0, open: 0 })
    return counts
  }
  const unmapped = countsFor('none')
  for (const section of ['server', 'storage', 'notification']) countsFor(section)

  let portRefused = 0
  fastify.decorate('gmsGate', {
    current: () => loaded,
    started: initial,
    watcher,
    setInstanceSectionLookup (lookup: InstanceSectionLookup) { instanceSection = lookup },
    requestCounts,
    get portRefusedCount () { return portRefused }
  } satisfies GmsGateHandle)
  fastify.decorateRequest('gmsOptions', null)
  fastify.decorateRequest('gmsPolicy', null)
  fastify.decorateRequest('gmsUser', null)

  hashLimit.configure(initial.security.hashLimit)
  const throttle = await createFailureThrottle(fastify, initial.security, () => loaded.security, fastify.log)
  // The listeners are opened once, from the options at start: so is the port that serves only /metrics.
  const metricsPort = initial.options.listen.metricsPort

  fastify.addHook('onRequest', function gate (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) {
    const snapshot = loaded
    request.gmsOptions = snapshot
    // Before any credential: a path refused on this port is not there, whoever asks.
    if (snapshot.portRules !== null || metricsPort !== null) {
      const decision = portDecision(request.url, request.socket.localPort, snapshot.portRules, metricsPort)
      if (decision === 'refuse') {
        portRefused++
        return notFound(request, reply)
      }
      if (decision === 'open') {
        unmapped.open++
        return done()
      }
    }
    const policy = policyFor(request, snapshot.policy, instanceSection)
    request.gmsPolicy = policy
    if (policy === null) {
      unmapped.open++
      return done()
    }
    const counts = countsFor(policy.section)
    if (!policy.auth.on) {
      counts.open++
      return done()
    }
    if (snapshot.security.httpsOnly && request.protocol !== 'https') return done(new HttpsRequiredError())
    const header = request.headers.authorization
    // No header at all is how every Basic client starts: challenge it without counting a failure.
    if (header === undefined) {
      counts.denied++
      return challenge(reply, policy)
    }
    const auth = policy.auth
    // A header known good (canonical plaintext, or a cached hash) is the usual caller.
    if (auth.verifier.matchesHeader(header)) {
      // Unthrottled: no promise at all.
      if (!throttle.active()) {
        counts.allowed++
        request.gmsUser = auth.username
        return done()
      }
      // It cannot count a failure, so it needs the peek but not a place behind this client's other checks.
      peekKnownGood(request, reply, auth, counts).then(() => done(), done)
      return
    }
    oneAtATime(request.ip, () => verifySlowly(request, reply, policy, auth, header, counts)).then(passed => { if (passed) done() }, done)
  })

  // Slow checks from one client run one after another, so concurrent guesses each see the failures
  // counted before them (peek, verify, count is not atomic) and cannot overrun max_failures together.
  const pending = new Map<string, Promise<unknown>>()
  function oneAtATime<T> (client: string, check: () => Promise<T>): Promise<T> {
    const result = (pending.get(client) ?? Promise.resolve()).then(check)
    const settled = result.then(() => {}, () => {})
    pending.set(client, settled)
    settled.then(() => { if (pending.get(client) === settled) pending.delete(client) }, () => {})
    return result
  }

  /** A known-good header while counters may be over a limit (Redis, or failures in the window): 429 if they are, after the client's queue. */
  async function peekKnownGood (request: FastifyRequest, reply: FastifyReply, auth: AuthOn, counts: SectionCounts): Promise<void> {
    const status = await throttle.peek(request, auth.username)
    // Refused in the queue, as a wrong guess is: a quicker 429 would tell the right password apart.
    if (status.throttled) return oneAtATime(request.ip, async () => refuseThrottled(reply, status.retryAfter, counts))
    counts.allowed++
    request.gmsUser = auth.username
  }

  /** Parse, peek at the throttle, verify (a hash may be computed); false once the challenge is sent. */
  async function verifySlowly (request: FastifyRequest, reply: FastifyReply, policy: SectionPolicy, auth: AuthOn, header: string, counts: SectionCounts): Promise<boolean> {
    const credentials = parseBasicAuthorization(header)
    const username = credentials?.username ?? null
    const status = await throttle.peek(request, username)
    if (status.throttled) refuseThrottled(reply, status.retryAfter, counts)
    if (credentials !== null) {
      const result = auth.verifier.verify(credentials)
      const verdict = typeof result === 'string' ? result : await result.catch(err => busy(request, reply, err))
      if (verdict === 'ok') {
        counts.allowed++
        request.gmsUser = credentials.username
        return true
      }
      await failed(request, policy, username, verdict)
    } else {
      await failed(request, policy, null, 'malformed')
    }
    counts.denied++
    challenge(reply, policy)
    return false
  }

  // Hash checks saturated: nothing is counted against the client; one line per episode, not per request.
  let lastBusyLog = 0
  function busy (request: FastifyRequest, reply: FastifyReply, err: unknown): never {
    if ((err as { code?: string }).code === 'GMS_GATE_HASH_CHECKS_BUSY') {
      reply.header('retry-after', '1')
      if (Date.now() - lastBusyLog > 10_000) {
        lastBusyLog = Date.now()
        request.log.warn({ audit: true, refused: hashLimit.refusedCount, ip: request.ip }, 'password hash checks saturated (max_hash_checks, max_hash_queue): refusing with 503 until a slot is free')
      }
    }
    throw err
  }

  async function failed (request: FastifyRequest, policy: SectionPolicy, username: string | null, reason: string): Promise<void> {
    const user = username === null ? undefined : loggableUsername(username)
    request.log.warn({ audit: true, section: policy.section, username: user, ip: request.ip, reason }, 'authentication failed')
    const status = await throttle.recordFailure(request, username)
    if (status.throttled) {
      request.log.warn({ audit: true, section: policy.section, username: user, ip: request.ip, reason: 'failure limit reached', retryAfter: status.retryAfter }, 'client throttled after repeated authentication failures')
    }
  }

  if (watcher !== null) {
    const reloadOnHup = (): void => watcher.reloadInBackground('SIGHUP')
    if (opts.sighup === true) process.on('SIGHUP', reloadOnHup)
    fastify.addHook('onClose', async () => {
      process.removeListener('SIGHUP', reloadOnHup)
      await watcher.close()
    })
  }
}

// Fastify's own 404 for an unknown route, byte for byte, whether the path has a route or not (and
// without callNotFound, which inside the 404 handler answers otherwise and logs a warning).
function notFound (request: FastifyRequest, reply: FastifyReply): void {
  reply.code(404).type('application/json; charset=utf-8')
    .send(`{"message":${JSON.stringify(`Route ${request.method}:${request.url} not found`)},"error":"Not Found","statusCode":404}`)
}

// Counted, not logged: a line per refused request would let a brute force fill the disk; the throttle's start is logged once.
function refuseThrottled (reply: FastifyReply, retryAfter: number, counts: SectionCounts): never {
  counts.throttled++
  reply.header('retry-after', String(retryAfter))
  throw new ThrottledError(retryAfter)
}

// One answer for every failure kind: nothing tells a caller which part was wrong.
function challenge (reply: FastifyReply, policy: SectionPolicy): void {
  reply.code(401).header('www-authenticate', policy.challenge).header('content-length', '0').send()
}

/** Put an app's routes behind GMS-style per-section Basic authentication. */
export const gmsGate = fp(gmsGatePlugin, { fastify: '5.x', name: 'gms-gate' })
export default gmsGate
