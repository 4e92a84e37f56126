import t from 'tap'
import { generatePassword, parseHashedSecret, secretKind } from '../plugins/secrets.js'
import { compileVerifier } from '../plugins/verifier.js'
import { VerifyCache } from '../plugins/verify-cache.js'
import { loadOptionsText } from '../plugins/options-watch.js'
import { OptionsError } from '../plugins/options-file.js'
import { cheapHashes, scryptHash } from './helpers/hashes.js'

const PASSWORD = 'hashed-pass-7f3a'
const hashes = await cheapHashes(PASSWORD)

t.test('each hash format is recognised by its prefix and plaintext is anything else', async t => {
  t.equal(secretKind(hashes.scrypt), 'scrypt')
  t.equal(secretKind(hashes.argon2id), 'argon2id')
  t.equal(secretKind(hashes.bcrypt), 'bcrypt')
  t.equal(secretKind(hashes.bcrypt.replace('$2b$', '$2y$')), 'bcrypt')
  t.equal(secretKind(hashes.bcrypt.replace('$2b$', '$2a$')), 'bcrypt')
  t.equal(secretKind('s3cret'), 'plaintext')
  t.equal(secretKind('$notahash$'), 'plaintext')
})

for (const kind of ['scrypt', 'argon2id', 'bcrypt'] as const) {
  t.test(`a ${kind} hash verifies its password and refuses another`, async t => {
    const secret = parseHashedSecret(hashes[kind])
    t.equal(await secret.verify(PASSWORD), true)
    t.equal(await secret.verify(PASSWORD + 'x'), false)
    t.equal(await secret.verifyDecoy(PASSWORD), false, 'the decoy never matches, not even the right password')
  })
}

t.test('bcrypt hashes written as $2y$ by htpasswd verify', async t => {
  t.equal(await parseHashedSecret(hashes.bcrypt.replace('$2b$', '$2y$')).verify(PASSWORD), true)
})

t.test('an unparsable hash is a SecretFormatError that does not quote the value', async t => {
  const bad = [
    '$scrypt$ln=10,r=8$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA',
    '$scrypt$ln=99,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA',
    '$scrypt$ln=10,r=8,p=1$c2$aGFzaGhhc2hoYXNoaGFzaA',
    '$scrypt$ln=10,r=8,p=1$c2FsdHNhbHQ$!!!',
    hashes.argon2id.replace('argon2id', 'argon2i'),
    hashes.argon2id.replace('v=19', 'v=16'),
    hashes.argon2id.replace('m=1024', 'm=abc'),
    hashes.argon2id + '$extra',
    hashes.bcrypt.slice(0, -1),
    hashes.bcrypt.replace('$04$', '$99$')
  ]
  for (const value of bad) {
    const err = t.throws(() => parseHashedSecret(value), { name: 'SecretFormatError' }, value) as Error
    t.notMatch(err.message, value)
  }
})

t.test('an unparsable hash in the options file is an OptionsError on its line', async t => {
  const ini = `[server]\nusername = u\n\n[storage]\npassword = ${hashes.bcrypt.slice(0, 30)}\n`
  const err = t.throws(() => loadOptionsText(ini)) as OptionsError
  t.equal(err.code, 'GMS_GATE_BAD_OPTIONS')
  t.equal(err.line, 5)
  t.match(err.reason, /\[storage\].*bcrypt/)
  t.notMatch(err.message, hashes.bcrypt.slice(0, 30))
})

t.test('a generated password is 32 random bytes in base64url', async t => {
  const a = generatePassword()
  t.match(a, /^[A-Za-z0-9_-]{43}$/)
  t.not(a, generatePassword())
})

t.test('a plaintext verifier answers synchronously and classifies the failure', async t => {
  const v = compileVerifier('server', 'user', 'plain-pw')
  t.equal(v.verify({ username: 'user', password: 'plain-pw' }), 'ok')
  t.equal(v.verify({ username: 'user', password: 'nope' }), 'wrong-password')
  t.equal(v.verify({ username: 'other', password: 'plain-pw' }), 'unknown-user')
})

t.test('a hashed verifier checks both parts and an unknown user runs the decoy', async t => {
  const v = compileVerifier('storage', 'user', hashes.argon2id, new VerifyCache())
  t.equal(await v.verify({ username: 'user', password: PASSWORD }), 'ok')
  t.equal(await v.verify({ username: 'user', password: 'nope' }), 'wrong-password')
  t.equal(await v.verify({ username: 'other', password: PASSWORD }), 'unknown-user')
})

t.test('a cached success answers without a verification, synchronously', async t => {
  const cache = new VerifyCache()
  const v = compileVerifier('storage', 'user', hashes.scrypt, cache)
  t.equal(await v.verify({ username: 'user', password: PASSWORD }), 'ok')
  t.equal(cache.size, 1)
  t.equal(v.verify({ username: 'user', password: PASSWORD }), 'ok', 'a plain value, not a promise')
})

t.test('failures are never cached', async t => {
  const cache = new VerifyCache()
  const v = compileVerifier('storage', 'user', hashes.scrypt, cache)
  await v.verify({ username: 'user', password: 'wrong' })
  await v.verify({ username: 'nobody', password: PASSWORD })
  t.equal(cache.size, 0)
})

t.test('a changed hash or username does not reuse a cached success', async t => {
  const cache = new VerifyCache()
  const given = { username: 'user', password: PASSWORD }
  t.equal(await compileVerifier('storage', 'user', hashes.scrypt, cache).verify(given), 'ok')
  const other = compileVerifier('storage', 'user', scryptHash('something-else'), cache)
  t.equal(await other.verify(given), 'wrong-password')
  const renamed = compileVerifier('storage', 'renamed', hashes.scrypt, cache)
  t.equal(await renamed.verify(given), 'unknown-user')
})

t.test('concurrent identical verifications run once', async t => {
  const cache = new VerifyCache()
  let runs = 0
  const slow = (): Promise<boolean> => { runs++; return new Promise(resolve => setImmediate(() => resolve(true))) }
  const results = await Promise.all([cache.verify('k', slow), cache.verify('k', slow), cache.verify('k', slow)])
  t.same(results, [true, true, true])
  t.equal(runs, 1)
  t.equal(cache.inFlight, 0)
})

t.test('the cache keeps at most max entries, dropping the least recently used', async t => {
  const cache = new VerifyCache({ max: 2 })
  const yes = async (): Promise<boolean> => true
  await cache.verify('a', yes)
  await cache.verify('b', yes)
  t.equal(cache.has('a'), true, 'a is now the most recent')
  await cache.verify('c', yes)
  t.equal(cache.has('b'), false)
  t.equal(cache.has('a'), true)
  t.equal(cache.has('c'), true)
})

t.test('a cached success expires after its TTL', async t => {
  const cache = new VerifyCache({ ttlMs: 0 })
  await cache.verify('a', async () => true)
  t.equal(cache.has('a'), false)
})

t.test('cache keys are HMACs: the password is not in them and another process would differ', async t => {
  const a = new VerifyCache().keyFor(['s', 'u', 'u', PASSWORD, 'h'])
  t.notMatch(a, PASSWORD)
  t.not(a, new VerifyCache().keyFor(['s', 'u', 'u', PASSWORD, 'h']))
})

t.test('a header is known good only for canonical plaintext credentials or a cached hashed success', async t => {
  const header = (u: string, p: string): string => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`
  const plain = compileVerifier('server', 'user', 'plain-pw')
  t.equal(plain.matchesHeader(header('user', 'plain-pw')), true)
  t.equal(plain.matchesHeader(header('user', 'plain-px')), false)
  t.equal(plain.matchesHeader(`basic ${header('user', 'plain-pw').slice(6)}`), false, 'another form takes the full parse')
  const cache = new VerifyCache()
  const hashed = compileVerifier('storage', 'user', hashes.scrypt, cache)
  t.equal(hashed.matchesHeader(header('user', PASSWORD)), false, 'not before a verification')
  await hashed.verify({ username: 'user', password: 'wrong-one' })
  t.equal(hashed.matchesHeader(header('user', 'wrong-one')), false, 'never after a failure')
  t.equal(await hashed.verify({ username: 'user', password: PASSWORD }), 'ok')
  t.equal(hashed.matchesHeader(header('user', PASSWORD)), true, 'after a cached success')
  t.equal(compileVerifier('storage', 'user', scryptHash('another'), cache).matchesHeader(header('user', PASSWORD)), false, 'not once the hash changed')
})
