/**
 * The credential check of one section: constant-time digests for a plaintext password, a hash
 * verification (cached, single flight) for a hashed one, and a decoy verification of the same cost
 * for an unknown username so timing says nothing about which part was wrong. No I/O, no Fastify.
 */
import { canonicalBasicHeader, credentialsMatch, digest, expectCredentials, headerMatches, parseBasicAuthorization, type Credentials } from './credentials.js'
import { parseHashedSecret, secretKind, type SecretKind } from './secrets.js'
import { verifyCache as sharedCache, type VerifyCache } from './verify-cache.js'
import { hashLimit as sharedLimit, type HashLimit } from './hash-limit.js'
import { timingSafeEqual } from 'node:crypto'

/** What a check found; callers answer the same 401 for both failures, and only logs tell them apart. */
export type Verdict = 'ok' | 'unknown-user' | 'wrong-password'

/** Checks a caller's credentials against one section's username and password. */
export interface CredentialVerifier {
  readonly kind: SecretKind
  /**
   * Whether the raw header is known good without waiting: the canonical header of a plaintext
   * secret (constant time), or credentials whose hashed verification is cached. False never means
   * "wrong": the caller then parses and verifies.
   */
  matchesHeader (header: string): boolean
  /** Synchronous for plaintext (the hot path stays a digest compare); a promise for a hash. */
  verify (given: Credentials): Verdict | Promise<Verdict>
}

/** Build the verifier for a section. Throws `SecretFormatError` for an unusable hash. */
export function compileVerifier (section: string, username: string, password: string, cache: VerifyCache = sharedCache, limit: HashLimit = sharedLimit): CredentialVerifier {
  const kind = secretKind(password)
  if (kind === 'plaintext') {
    const expected = expectCredentials(username, password)
    const userDigest = expected.userDigest
    const canonical = digest(canonicalBasicHeader(username, password))
    return Object.freeze({
      kind,
      matchesHeader: (header: string): boolean => headerMatches(canonical, header),
      verify (given: Credentials): Verdict {
        // Both compares always run (credentialsMatch); the extra user compare only classifies the failure.
        if (credentialsMatch(expected, given)) return 'ok'
        return timingSafeEqual(digest(given.username), userDigest) ? 'wrong-password' : 'unknown-user'
      }
    })
  }
  const secret = parseHashedSecret(password)
  const userDigest = digest(username)
  // The configured username is in the key too: renaming the user invalidates its cached successes.
  const keyOf = (given: Credentials): string => cache.keyFor([section, username, given.username, given.password, secret.encoded])
  return Object.freeze({
    kind,
    matchesHeader (header: string): boolean {
      const given = parseBasicAuthorization(header)
      return given !== null && cache.has(keyOf(given))
    },
    verify (given: Credentials): Promise<Verdict> | Verdict {
      const key = keyOf(given)
      if (cache.has(key)) return 'ok'
      const userOk = timingSafeEqual(digest(given.username), userDigest)
      // The decoy takes a slot too: a refusal must not tell a known username from an unknown one.
      return cache.verify(key, () => limit.run(() => userOk ? secret.verify(given.password) : secret.verifyDecoy(given.password)))
        .then(ok => ok ? 'ok' : userOk ? 'wrong-password' : 'unknown-user')
    }
  })
}
