/**
 * Stored secrets: a `password` option is plaintext (as GMS) or a PHC-format hash recognised by its
 * prefix (`$scrypt$`, `$argon2id$`, `$2a$`/`$2b$`/`$2y$` bcrypt). Parsing is strict so a typo is a
 * configuration error at load, not a door that never opens. No I/O, no Fastify.
 */
import { randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto'
import { hash as argon2Hash, verify as argon2Verify, Algorithm } from '@node-rs/argon2'
import bcrypt from 'bcryptjs'

/** How a password is stored. */
export type SecretKind = 'plaintext' | 'scrypt' | 'argon2id' | 'bcrypt'

/** A parsed hashed secret: verify a candidate, or spend the same work on a decoy. */
export interface HashedSecret {
  readonly kind: Exclude<SecretKind, 'plaintext'>
  /** The PHC string as configured (part of the verify-cache key, so a new hash invalidates old entries). */
  readonly encoded: string
  verify (password: string): Promise<boolean>
  /** Same algorithm and cost against a random hash: always false, same time as a wrong password. */
  verifyDecoy (password: string): Promise<boolean>
}

/** Why a value that looks like a hash cannot be used; the message never quotes the value. */
export class SecretFormatError extends Error {
  override name = 'SecretFormatError'
}

/** The kind of a configured password, by prefix. */
export function secretKind (value: string): SecretKind {
  if (value.startsWith('$scrypt$')) return 'scrypt'
  if (value.startsWith('$argon2')) return 'argon2id'
  if (/^\$2[aby]\$/.test(value)) return 'bcrypt'
  return 'plaintext'
}

/** Parse a hashed password. Throws `SecretFormatError` when the value is not a usable hash. */
export function parseHashedSecret (value: string): HashedSecret {
  const kind = secretKind(value)
  if (kind === 'scrypt') return parseScrypt(value)
  if (kind === 'argon2id') return parseArgon2id(value)
  if (kind === 'bcrypt') return parseBcrypt(value)
  throw new SecretFormatError('not a hash')
}

// PHC's B64: standard alphabet, no padding.
const B64 = /^[A-Za-z0-9+/]+$/
const fromB64 = (s: string): Buffer => Buffer.from(s, 'base64')
const toB64 = (b: Buffer): string => b.toString('base64').replace(/=+$/, '')

function phcParams (text: string, allowed: readonly string[], what: string): Map<string, number> {
  const params = new Map<string, number>()
  for (const part of text.split(',')) {
    const m = /^([a-z]+)=(\d{1,10})$/.exec(part)
    if (m === null || !allowed.includes(m[1]!) || params.has(m[1]!)) throw new SecretFormatError(`${what} parameters must be ${allowed.join(', ')} with integer values`)
    params.set(m[1]!, Number(m[2]))
  }
  for (const name of allowed) if (!params.has(name)) throw new SecretFormatError(`${what} hash lacks parameter ${name}`)
  return params
}

function saltAndHash (salt: string | undefined, hash: string | undefined, what: string): { salt: Buffer, hash: Buffer } {
  if (salt === undefined || hash === undefined || !B64.test(salt) || !B64.test(hash)) throw new SecretFormatError(`${what} hash needs a base64 salt and hash`)
  const s = fromB64(salt)
  const h = fromB64(hash)
  if (s.length < 8) throw new SecretFormatError(`${what} salt is shorter than 8 bytes`)
  if (h.length < 16 || h.length > 128) throw new SecretFormatError(`${what} hash must be 16 to 128 bytes`)
  return { salt: s, hash: h }
}

function scryptAsync (password: string, salt: Buffer, length: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCallback(password, salt, length, options, (err, key) => err === null ? resolve(key) : reject(err)))
}

/** scrypt in PHC form: `$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<hash>` (node:crypto, no dependency). */
function parseScrypt (value: string): HashedSecret {
  const [, , params, salt, hash, extra] = value.split('$')
  if (extra !== undefined || params === undefined) throw new SecretFormatError('scrypt hash must read $scrypt$ln=..,r=..,p=..$salt$hash')
  const p = phcParams(params, ['ln', 'r', 'p'], 'scrypt')
  const ln = p.get('ln')!
  const r = p.get('r')!
  const par = p.get('p')!
  if (ln < 1 || ln > 24 || r < 1 || r > 64 || par < 1 || par > 64) throw new SecretFormatError('scrypt parameters out of range (ln 1-24, r 1-64, p 1-64)')
  const parts = saltAndHash(salt, hash, 'scrypt')
  const N = 2 ** ln
  const options: ScryptOptions = { N, r, p: par, maxmem: 256 * N * r + 1024 * 1024 }
  const decoySalt = randomBytes(parts.salt.length)
  const decoyHash = randomBytes(parts.hash.length)
  return Object.freeze({
    kind: 'scrypt' as const,
    encoded: value,
    async verify (password: string) {
      return timingSafeEqual(await scryptAsync(password, parts.salt, parts.hash.length, options), parts.hash)
    },
    async verifyDecoy (password: string) {
      timingSafeEqual(await scryptAsync(password, decoySalt, decoyHash.length, options), decoyHash)
      return false
    }
  })
}

/** argon2id in PHC form: `$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>`. */
function parseArgon2id (value: string): HashedSecret {
  const [, id, version, params, salt, hash, extra] = value.split('$')
  if (id !== 'argon2id') throw new SecretFormatError('only argon2id is accepted among argon2 variants')
  if (version !== 'v=19' || params === undefined || extra !== undefined) throw new SecretFormatError('argon2id hash must read $argon2id$v=19$m=..,t=..,p=..$salt$hash')
  const p = phcParams(params, ['m', 't', 'p'], 'argon2id')
  const m = p.get('m')!
  const t = p.get('t')!
  const par = p.get('p')!
  if (m < 8 * par || m > 4 * 1024 * 1024 || t < 1 || t > 100 || par < 1 || par > 64) throw new SecretFormatError('argon2id parameters out of range (m 8p-4194304 KiB, t 1-100, p 1-64)')
  const parts = saltAndHash(salt, hash, 'argon2id')
  // Same parameters and lengths, random salt and hash: verifying it costs exactly what the real one does.
  const decoy = `$argon2id$v=19$m=${m},t=${t},p=${par}$${toB64(randomBytes(parts.salt.length))}$${toB64(randomBytes(parts.hash.length))}`
  return Object.freeze({
    kind: 'argon2id' as const,
    encoded: value,
    verify: (password: string) => argon2Verify(value, password),
    async verifyDecoy (password: string) {
      await argon2Verify(decoy, password)
      return false
    }
  })
}

const BCRYPT = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/
const BCRYPT_ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'

/** bcrypt (`$2a$`, `$2b$`, `$2y$`, as htpasswd writes them), pure JS via bcryptjs. */
function parseBcrypt (value: string): HashedSecret {
  const m = BCRYPT.exec(value)
  if (m === null) throw new SecretFormatError('bcrypt hash must read $2b$<cost>$ followed by 53 characters of ./A-Za-z0-9')
  const cost = Number(m[1])
  if (cost < 4 || cost > 31) throw new SecretFormatError('bcrypt cost must be 4 to 31')
  const random = randomBytes(53)
  // The 22nd salt character carries only 2 bits: '.', 'O', 'e' or 'u' keep the decoy canonical.
  const chars = [...random].map(b => BCRYPT_ALPHABET[b & 63]!)
  chars[21] = '.Oeu'[random[21]! & 3]!
  const decoy = `$2b$${m[1]}$${chars.join('')}`
  return Object.freeze({
    kind: 'bcrypt' as const,
    encoded: value,
    verify: (password: string) => bcrypt.compare(password, value),
    async verifyDecoy (password: string) {
      await bcrypt.compare(password, decoy)
      return false
    }
  })
}

/** Hash parameters `hash-password` writes: OWASP's recommended minimums. */
export const HASH_DEFAULTS = {
  argon2id: { memoryCost: 19456, timeCost: 2, parallelism: 1 },
  scrypt: { ln: 14, r: 8, p: 5 },
  bcrypt: { cost: 12 }
} as const

/** Hash a password in PHC form for `config.ini`. */
export async function hashPassword (password: string, kind: Exclude<SecretKind, 'plaintext'> = 'argon2id'): Promise<string> {
  if (kind === 'argon2id') return argon2Hash(password, { ...HASH_DEFAULTS.argon2id, algorithm: Algorithm.Argon2id })
  if (kind === 'bcrypt') return bcrypt.hash(password, HASH_DEFAULTS.bcrypt.cost)
  const { ln, r, p } = HASH_DEFAULTS.scrypt
  const salt = randomBytes(16)
  const N = 2 ** ln
  const key = await scryptAsync(password, salt, 32, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 })
  return `$scrypt$ln=${ln},r=${r},p=${p}$${toB64(salt)}$${toB64(key)}`
}

/** A service-account password: 32 random bytes, base64url (43 characters). */
export function generatePassword (): string {
  return randomBytes(32).toString('base64url')
}
