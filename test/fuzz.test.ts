import t from 'tap'
import { appOnText } from './helpers/app.js'
import { scryptHash } from './helpers/hashes.js'
import { loadOptionsText } from '../plugins/options-watch.js'

// A seeded generator, so a failure can be replayed: FUZZ_SEED=<n> npx tap test/fuzz.test.ts
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000)
let state = SEED
function random (): number {
  state = (state * 1103515245 + 12345) % 2 ** 31
  return state / 2 ** 31
}
const int = (n: number): number => Math.floor(random() * n)
const pick = <T>(items: readonly T[]): T => items[int(items.length)]!
const chars = (n: number, from: (i: number) => number): string => Array.from({ length: n }, (_, i) => String.fromCharCode(from(i))).join('')
const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64')

const USER = 'fuzz-user'
const PASS = 'fuzz-pass-8c1e'
const GOOD = `Basic ${b64(`${USER}:${PASS}`)}`

/** One random or malformed Authorization value (only bytes a header may carry). */
function header (): string {
  switch (int(9)) {
    case 0: return chars(int(200), () => pick([9, ...Array.from({ length: 95 }, (_, i) => 32 + i), 0x80 + int(128)]))
    case 1: return `Basic ${b64(Buffer.from(Array.from({ length: int(100) }, () => int(256))))}`
    case 2: return `Basic ${b64(`${chars(int(20), () => 32 + int(0x2500))}:${chars(int(20), () => 32 + int(0x2500))}`)}`
    case 3: { // one character of the right header changed
      const i = 6 + int(GOOD.length - 6)
      return GOOD.slice(0, i) + pick([...'ABCabc012+/=!* ']) + GOOD.slice(i + 1)
    }
    case 4: return GOOD.slice(0, int(GOOD.length))
    case 5: return pick(['basic ', 'BASIC ', 'Basic  ', 'Bearer ', 'Digest ', 'Basic\t']) + b64(`${USER}:${PASS}${pick(['x', ' ', '', '\u0000', ':'])}`)
    case 6: return `Basic ${b64(`${pick([USER, USER.toUpperCase(), USER + ' ', ''])}:${pick([PASS.toUpperCase(), PASS.slice(1), PASS + PASS, ''])}`)}`
    case 7: return `Basic ${'A'.repeat(int(10_000))}`
    default: return `Basic ${b64(`${USER}:${PASS}`).replace(/=/g, '')}${'='.repeat(int(4))}`
  }
}

/** Whether a header carries exactly the right credentials, decoded independently of the gate's parser. */
function carriesGood (value: string): boolean {
  const m = /^basic +([A-Za-z0-9+/]+={0,2})$/i.exec(value)
  return m !== null && m[1]!.length % 4 === 0 && Buffer.from(m[1]!, 'base64').toString('utf8') === `${USER}:${PASS}`
}

t.test(`10,000 random and malformed Authorization headers: no 5xx, nothing wrong let through (seed ${SEED})`, async t => {
  const { app } = await appOnText(t, `[server]\nusername = ${USER}\npassword = ${PASS}\nmax_failures = 999999\nmax_failures_per_ip = 999999\n` +
    `[storage]\npassword = ${scryptHash(PASS, 4)}\n`)
  const problems: string[] = []
  const statuses = new Map<number, number>()
  for (let i = 0; i < 10_000; i++) {
    const value = header()
    const url = i % 2 === 0 ? '/genesys/1/node' : '/genesys/1/storage/nothing-here'
    const res = await app.inject({ url, headers: { authorization: value } })
    statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
    const allowed = res.statusCode !== 401 && res.statusCode !== 429
    if (res.statusCode >= 500 || (allowed && !carriesGood(value))) problems.push(`${res.statusCode} for ${JSON.stringify(value.slice(0, 120))} on ${url}`)
  }
  t.same(problems, [], `statuses: ${JSON.stringify(Object.fromEntries(statuses))}`)
  t.ok((statuses.get(401) ?? 0) > 5000, 'most were refused with the challenge')
})

const FRAGMENTS = [
  '[server]', '[storage]', '[notification]', '[service.x]', '[service.a/b]', '[dfm.up]', '[', '[]', '[server', 'x]', '',
  '; comment', '# comment', '=', '= value', 'password', 'username =', 'realm = "unterminated', 'realm = a\\;b'
]
const KEYS = ['username', 'password', 'realm', 'port', 'host', 'max_failures', 'max_failures_per_ip', 'failure_window', 'throttle_store',
  'plaintext_passwords', 'trust_proxy', 'https_only', 'redis_url', '_type', '__proto__', 'constructor', 'x[]', 'weird key']
const VALUES = ['', 'true', 'false', '0', '-1', '65536', '99999999999', 'deny', 'allow', 'redis', '10m', '1h', 'soon', '10.0.0.0/33', '::1',
  '$scrypt$', '$scrypt$ln=4,r=8,p=1$', '$scrypt$ln=4,r=8,p=1$c2FsdHNhbHQ$aGFzaA', '$argon2id$v=19$m=8,t=1,p=1$$', '$argon2i$', '$2b$04$short',
  '$2y$99$' + 'a'.repeat(53), 'a:b', '"quoted"', '\u0001ctl']

/** A random, mostly malformed options file, and the password tokens it holds. */
function optionsFile (): { text: string, secrets: string[] } {
  const secrets: string[] = []
  // A third are wild; the rest are well-formed lines with bad values, to reach validation and hash parsing.
  const wild = int(3) === 0
  const lines: string[] = wild ? [] : ['[server]']
  for (let i = 0, n = 1 + int(12); i < n; i++) {
    const r = int(wild ? 4 : 8)
    if (r === 0) lines.push(wild ? pick(FRAGMENTS) : pick(['[storage]', '[service.x]', '[dfm.up]', '[server]']))
    else if (r === 1) lines.push(wild ? chars(int(40), () => 32 + int(95)) : '; comment')
    else {
      const key = pick(KEYS)
      let value = pick(VALUES)
      if (key === 'password' && int(2) === 0) {
        value = `secret-${chars(10, () => 97 + int(26))}${pick(['', '$', '\u0002', ' ; tail'])}`
        secrets.push(value.slice(0, 17))
      }
      lines.push(`${key}${pick([' = ', '=', ' =', '  =  '])}${value}`)
    }
  }
  return { text: lines.join(pick(['\n', '\r\n'])), secrets }
}

t.test(`500 random malformed options files: a clean OptionsError or a valid load, never a crash or a quoted password (seed ${SEED})`, async t => {
  const problems: string[] = []
  let rejected = 0
  for (let i = 0; i < 500; i++) {
    const { text, secrets } = optionsFile()
    try {
      loadOptionsText(text)
    } catch (err) {
      rejected++
      const e = err as { code?: string, message: string }
      if (e.code !== 'GMS_GATE_BAD_OPTIONS') problems.push(`${String(err)} for ${JSON.stringify(text)}`)
      else if (secrets.some(s => e.message.includes(s))) problems.push(`password quoted in "${e.message}"`)
    }
  }
  t.same(problems, [])
  t.ok(rejected > 100 && rejected < 490, `${rejected} of 500 rejected, the rest loaded`)
})
