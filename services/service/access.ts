/**
 * Instance ids and access reservations: the logic of the builtins, apart from HTTP and Fastify.
 */
import { randomBytes, randomInt } from 'node:crypto'
import type { Reservation, ServiceStateStore } from './state-store.js'

const ID_RANDOM = /^[A-Za-z0-9_-]{22}$/

/**
 * A new instance id: `<service>.<22 base64url chars>`. The service name rides in the id so that any
 * gms-gate instance can tell, synchronously and without a lookup, which section protects it.
 */
export function newInstanceId (service: string): string {
  return `${service}.${randomBytes(16).toString('base64url')}`
}

/** The service named in an instance id, or undefined when `id` is not one. */
export function serviceOfInstance (id: string): string | undefined {
  const dot = id.lastIndexOf('.')
  if (dot <= 0 || !ID_RANDOM.test(id.slice(dot + 1))) return undefined
  return id.slice(0, dot)
}

/** What one reservation asks for. */
export interface AccessRequest {
  readonly numbers: readonly string[]
  /** 0 for no access code. */
  readonly codeLength: number
  readonly ttlMs: number
  readonly holder: Reservation
}

/** A number (and code, `''` for none) now held. */
export interface AccessGrant {
  readonly number: string
  readonly code: string
}

/** Random (number, code) draws tried before a pool with codes counts as full. */
const CODE_ATTEMPTS = 32

/** A random numeric code of `length` digits (leading zeros kept). */
export function randomAccessCode (length: number): string {
  let code = ''
  while (code.length < length) code += String(randomInt(0, 1_000_000_000)).padStart(9, '0')
  return code.slice(0, length)
}

/**
 * Reserve a free number from the pool (and a code unique among that number's live reservations).
 * Without codes each number is tried once from a random start; with codes, random draws until one is
 * free. Resolves to null when the pool is exhausted.
 */
export async function reserveAccess (store: ServiceStateStore, request: AccessRequest): Promise<AccessGrant | null> {
  const { numbers, codeLength, ttlMs, holder } = request
  const start = randomInt(0, numbers.length)
  if (codeLength === 0) {
    for (let i = 0; i < numbers.length; i++) {
      const number = numbers[(start + i) % numbers.length]!
      if (await store.claim(number, '', holder, ttlMs)) return { number, code: '' }
    }
    return null
  }
  const space = numbers.length * 10 ** codeLength
  const attempts = Math.min(CODE_ATTEMPTS, space * 4)
  for (let i = 0; i < attempts; i++) {
    const number = numbers[(start + i) % numbers.length]!
    const code = randomAccessCode(codeLength)
    if (await store.claim(number, code, holder, ttlMs)) return { number, code }
  }
  return null
}
