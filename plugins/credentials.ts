/**
 * Basic credentials: parse an `Authorization` header (RFC 7617) and compare in constant time.
 * Pure: no I/O, no Fastify.
 */
import { hash, timingSafeEqual } from 'node:crypto'

/** A user-id and password as a caller sent them. */
export interface Credentials {
  readonly username: string
  readonly password: string
}

/** What a section expects, kept as digests so every comparison has the same length. */
export interface ExpectedCredentials {
  readonly userDigest: Buffer
  readonly passDigest: Buffer
}

/** Longer headers are refused before any decoding (8 KB of base64 is never a real credential). */
export const MAX_AUTHORIZATION_LENGTH = 4096

const strictUtf8 = new TextDecoder('utf-8', { fatal: true })
// RFC 4648 base64 with its padding, as RFC 7617 asks.
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/

/**
 * The credentials in a `Basic` Authorization header, or null for anything else: no header,
 * another scheme, bad base64, bytes that are not UTF-8, no colon, control characters.
 */
export function parseBasicAuthorization (header: string | undefined): Credentials | null {
  if (header === undefined || header.length < 7 || header.length > MAX_AUTHORIZATION_LENGTH) return null
  // The scheme is case-insensitive (RFC 7235 §2.1) and followed by one or more spaces.
  if (header.charCodeAt(5) !== 32 || header.slice(0, 5).toLowerCase() !== 'basic') return null
  let start = 6
  while (header.charCodeAt(start) === 32) start++
  const token = header.slice(start)
  if (token.length % 4 !== 0 || !BASE64.test(token)) return null
  let decoded: string
  try {
    decoded = strictUtf8.decode(Buffer.from(token, 'base64'))
  } catch {
    return null
  }
  if (CONTROL.test(decoded)) return null
  const colon = decoded.indexOf(':')
  if (colon === -1) return null
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
}

/** SHA-256 of a UTF-8 string: the fixed-length form every constant-time compare here works on. */
export function digest (value: string): Buffer {
  return hash('sha256', value, 'buffer')
}

/** Precompute what `credentialsMatch` compares against (once per options load). */
export function expectCredentials (username: string, password: string): ExpectedCredentials {
  return Object.freeze({ userDigest: digest(username), passDigest: digest(password) })
}

/** The `Authorization` value a client such as curl sends for these credentials (`Basic` + padded base64). */
export function canonicalBasicHeader (username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`
}

/**
 * Constant-time check of a whole header against the digest of the canonical one: one hash and no
 * decoding for the usual caller. A header that differs in form only (scheme case, spaces) is not
 * matched here and takes the full parse.
 */
export function headerMatches (expectedDigest: Buffer, header: string): boolean {
  return timingSafeEqual(digest(header), expectedDigest)
}

/** Constant-time check of both parts, always both: the time says nothing about which part was wrong. */
export function credentialsMatch (expected: ExpectedCredentials, given: Credentials): boolean {
  const userOk = timingSafeEqual(digest(given.username), expected.userDigest)
  const passOk = timingSafeEqual(digest(given.password), expected.passDigest)
  // Bitwise AND: both comparisons have already run, and no branch depends on the first alone.
  return (Number(userOk) & Number(passOk)) === 1
}
