/**
 * The `[server]` options of the hardening (plaintext policy, failure throttling, proxy trust, TLS),
 * validated into typed settings at load: a bad value is an `OptionsError` on its line. Pure.
 */
import { isIP } from 'node:net'
import { dirname, resolve } from 'node:path'
import { OptionsError, sectionKind, type OptionsSnapshot, type OptionsWarning } from './options-file.js'
import { secretKind } from './secrets.js'
import { DEFAULT_HASH_LIMIT, type HashLimitSettings } from './hash-limit.js'

/** What to do with a password kept as plaintext in the options file. */
export type PlaintextPasswords = 'warn' | 'allow' | 'deny'

/** Typed hardening settings from `[server]`. */
export interface SecuritySettings {
  readonly plaintextPasswords: PlaintextPasswords
  /** Failures allowed per (client IP, username) in one window. */
  readonly maxFailures: number
  /** Failures allowed per client IP (all usernames) in one window. */
  readonly maxFailuresPerIp: number
  readonly failureWindowMs: number
  /** Where failure counters live (read at start only). */
  readonly throttleStore: 'memory' | 'redis'
  readonly redisUrl: string
  /** Fastify's `trustProxy`: whether X-Forwarded-For/-Proto are believed (read at start only). */
  readonly trustProxy: boolean | string
  /** Absolute paths of the PEM certificate chain and key, or null for plain HTTP. */
  readonly tls: { readonly cert: string, readonly key: string } | null
  readonly httpsOnly: boolean
  /** Password hash checks at once, and waiting, process-wide (plugins/hash-limit.ts). */
  readonly hashLimit: HashLimitSettings
}

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379/0'

const DURATION = /^(\d{1,9})\s*(ms|s|m|h)?$/
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** Validate the hardening options. Throws `OptionsError` with the option's line. */
export function compileSecuritySettings (options: OptionsSnapshot): { settings: SecuritySettings, warnings: OptionsWarning[] } {
  const server = options.sections.get('server')
  const v = server?.values ?? {}
  const fail = (key: string, reason: string): never => {
    throw new OptionsError(options.file, server?.lines[key] ?? 0, `${key} in [server] ${reason}`)
  }
  const oneOf = <T extends string>(key: string, allowed: readonly T[], fallback: T): T => {
    const value = v[key]
    if (value === undefined) return fallback
    if (!(allowed as readonly string[]).includes(value)) fail(key, `must be ${allowed.join(', ')}; got ${JSON.stringify(value)}`)
    return value as T
  }
  const count = (key: string, fallback: number): number => {
    const value = v[key]
    if (value === undefined) return fallback
    if (!/^\d{1,6}$/.test(value) || Number(value) < 1) fail(key, `must be a whole number from 1 to 999999; got ${JSON.stringify(value)}`)
    return Number(value)
  }
  const flag = (key: string): boolean => oneOf(key, ['true', 'false'], 'false') === 'true'

  let failureWindowMs = 60_000
  if (v.failure_window !== undefined) {
    const m = DURATION.exec(v.failure_window.trim())
    if (m === null || Number(m[1]) === 0) fail('failure_window', `must be a duration such as 60, 60s, 10m or 1h (seconds by default); got ${JSON.stringify(v.failure_window)}`)
    failureWindowMs = Number(m![1]) * UNIT_MS[m![2] ?? 's']!
  }

  let trustProxy: boolean | string = false
  if (v.trust_proxy !== undefined) {
    if (v.trust_proxy === 'true' || v.trust_proxy === 'false') trustProxy = v.trust_proxy === 'true'
    else {
      const entries = v.trust_proxy.split(',').map(s => s.trim())
      for (const entry of entries) {
        const [address, bits, more] = entry.split('/')
        const family = isIP(address ?? '')
        const max = family === 4 ? 32 : 128
        if (family === 0 || more !== undefined || (bits !== undefined && (!/^\d{1,3}$/.test(bits) || Number(bits) > max))) {
          fail('trust_proxy', `must be true, false or a comma-separated list of proxy addresses or CIDR ranges; ${JSON.stringify(entry)} is not one`)
        }
      }
      trustProxy = entries.join(',')
    }
  }

  let tls: SecuritySettings['tls'] = null
  if (v.tls_cert !== undefined || v.tls_key !== undefined) {
    if (v.tls_cert === undefined) fail('tls_key', 'is set but tls_cert is not: both are needed for HTTPS')
    if (v.tls_key === undefined) fail('tls_cert', 'is set but tls_key is not: both are needed for HTTPS')
    // Relative paths are read from the options file's directory, as the file travels with its certificates.
    const base = options.file === '<inline>' ? process.cwd() : dirname(resolve(options.file))
    tls = Object.freeze({ cert: resolve(base, v.tls_cert!), key: resolve(base, v.tls_key!) })
  }

  const settings: SecuritySettings = Object.freeze({
    plaintextPasswords: oneOf('plaintext_passwords', ['warn', 'allow', 'deny'] as const, 'warn'),
    maxFailures: count('max_failures', 5),
    maxFailuresPerIp: count('max_failures_per_ip', 20),
    failureWindowMs,
    throttleStore: oneOf('throttle_store', ['memory', 'redis'] as const, 'memory'),
    redisUrl: v.redis_url ?? DEFAULT_REDIS_URL,
    trustProxy,
    tls,
    httpsOnly: flag('https_only'),
    hashLimit: Object.freeze({
      running: count('max_hash_checks', DEFAULT_HASH_LIMIT.running),
      queued: count('max_hash_queue', DEFAULT_HASH_LIMIT.queued)
    })
  })
  if (v.redis_url !== undefined && !/^rediss?:\/\//.test(v.redis_url)) fail('redis_url', 'must start with redis:// or rediss://')

  const warnings: OptionsWarning[] = []
  if (settings.httpsOnly && tls === null && trustProxy === false) {
    warnings.push({ file: options.file, line: server?.lines.https_only ?? 0, message: 'https_only = true without tls_cert or trust_proxy: every protected request arrives over plain HTTP and is refused' })
  }
  // dfm passwords are sent upstream, so they must stay plaintext: only checked secrets count here.
  for (const section of options.sections.values()) {
    const kind = sectionKind(section.name)
    if (kind === undefined || kind === 'dfm') continue
    const password = section.values.password
    if (password === undefined || secretKind(password) !== 'plaintext') continue
    const line = section.lines.password ?? section.line
    if (settings.plaintextPasswords === 'deny') {
      throw new OptionsError(options.file, line, `password in [${section.name}] is plaintext and [server] plaintext_passwords = deny; store a hash (gms-gate hash-password)`)
    }
    if (settings.plaintextPasswords === 'warn') {
      warnings.push({ file: options.file, line, message: `password in [${section.name}] is plaintext; store a hash (gms-gate hash-password) or set [server] plaintext_passwords = allow` })
    }
  }
  return { settings, warnings }
}
