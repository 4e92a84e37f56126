/**
 * What a Storage API request may carry: the ttl in its path, and keys and values in its body.
 * Pure: each check throws a coded 4xx error naming the field, so a bad input is never a 500.
 */
import { BadRequestError, PayloadTooLargeError, TooManyKeysError } from '../../plugins/errors.js'
import { DEFAULT_TTL_SECONDS, type StorageSettings } from './settings.js'
import type { StoredValue } from './store.js'

/** The longest key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 256

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/
const DECIMAL = /^[+-]?\d+(\.\d+)?$/

/**
 * The ttl of a `POST /storage/<ttl>` (or `/<id>/<ttl>`), in seconds. As GMS does, a ttl that is not a
 * positive number means 30 s; one over `max_ttl` is refused.
 */
export function parseTtl (raw: string, maxTtlSeconds: number): number {
  const ttl = DECIMAL.test(raw) ? Number(raw) : NaN
  if (!(ttl > 0)) return DEFAULT_TTL_SECONDS
  if (ttl > maxTtlSeconds) throw new BadRequestError(`ttl ${raw} is over max_ttl (${maxTtlSeconds} s)`)
  return ttl
}

/** Refuse a key that could not be stored, read back by its URL, or used as a plain object key. */
export function checkKey (key: string): void {
  if (key === '') throw new BadRequestError('a key is empty')
  const shown = JSON.stringify(key.length > 64 ? `${key.slice(0, 64)}...` : key)
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw new BadRequestError(`key ${shown} is longer than ${MAX_KEY_BYTES} bytes`)
  if (CONTROL.test(key)) throw new BadRequestError(`key ${shown} contains a control character`)
  // Multipart bodies refuse these names (prototype pollution), so every body kind does, alike.
  if (key in Object.prototype) throw new BadRequestError(`key ${shown} is reserved`)
}

/** Refuse a value over `max_value_bytes` (413). */
export function checkValueSize (key: string, bytes: number, settings: StorageSettings): void {
  if (bytes > settings.maxValueBytes) {
    throw new PayloadTooLargeError(`the value of key ${JSON.stringify(key)} is over max_value_bytes (${settings.maxValueBytes})`)
  }
}

/**
 * Keys and values of a URL-encoded form or a JSON object. A value is a string (numbers and booleans
 * are kept as their text); a repeated form key, a nested object or an array is refused.
 */
export function fieldsFromObject (body: unknown, settings: StorageSettings): Record<string, StoredValue> {
  if (body === undefined || body === null) return Object.create(null)
  if (typeof body !== 'object' || Array.isArray(body)) {
    throw new BadRequestError('the body must be a form (URL-encoded or multipart) or a JSON object')
  }
  const entries = Object.entries(body)
  if (entries.length > settings.maxKeys) throw new TooManyKeysError(entries.length, settings.maxKeys)
  const data: Record<string, StoredValue> = Object.create(null)
  for (const [key, raw] of entries) {
    checkKey(key)
    if (Array.isArray(raw)) throw new BadRequestError(`key ${JSON.stringify(key)} is given more than once`)
    if (typeof raw !== 'string' && typeof raw !== 'number' && typeof raw !== 'boolean') {
      throw new BadRequestError(`the value of key ${JSON.stringify(key)} must be a string, a number or a boolean`)
    }
    const value = String(raw)
    checkValueSize(key, Buffer.byteLength(value), settings)
    data[key] = { type: 'text', value }
  }
  return data
}

const MEDIA_TYPE = /^[\w!#$&^.+-]+\/[\w!#$&^.+-]+$/

/** A file part's content type as it will be served back: as declared when well-formed, else octet-stream. */
export function fileContentType (declared: string | undefined): string {
  const full = (declared ?? '').trim()
  return MEDIA_TYPE.test(full.split(';')[0]!.trim()) && !CONTROL.test(full) ? full : 'application/octet-stream'
}

/** `Content-Disposition` for a stored file: an attachment (never rendered in place), named per RFC 6266. */
export function attachmentDisposition (filename: string): string {
  if (filename === '') return 'attachment'
  const encoded = encodeURIComponent(filename).replace(/['()*]/g, c => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
  return `attachment; filename*=UTF-8''${encoded}`
}
