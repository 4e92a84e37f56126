import t from 'tap'
import { parseOptions } from '../plugins/options-file.js'
import { allows, challengeFor, compilePolicy, DEFAULT_REALM, sectionForPath, type PolicyTable, type SectionPolicy } from '../plugins/policy.js'

const table = (text: string): PolicyTable => compilePolicy(parseOptions(text, 'p.ini'))
const failure = (text: string): unknown => {
  try {
    table(text)
  } catch (err) {
    return err
  }
  return undefined
}

interface Case {
  name: string
  ini: string
  /** Expected for [storage]: null = open, else [username, password, usernameFrom, passwordFrom]. */
  storage: null | [string, string, string, string]
  realm?: string
}

// DESIGN §2, case by case, seen from [storage].
const cases: Case[] = [
  { name: 'no password anywhere: open', ini: '[server]\n[storage]\n', storage: null },
  { name: 'server password alone turns authentication on for every section', ini: '[server]\nusername = default\npassword = s3cret\n', storage: ['default', 's3cret', 'server', 'server'] },
  { name: 'server username without any password: open', ini: '[server]\nusername = default\n', storage: null },
  { name: 'section username with the server password', ini: '[server]\nusername = default\npassword = s3cret\n[storage]\nusername = store\n', storage: ['store', 's3cret', 'storage', 'server'] },
  { name: 'section password with the server username', ini: '[server]\nusername = default\n[storage]\npassword = mine\n', storage: ['default', 'mine', 'server', 'storage'] },
  { name: 'section username and password supersede the server ones', ini: '[server]\nusername = default\npassword = s3cret\n[storage]\nusername = store\npassword = mine\n', storage: ['store', 'mine', 'storage', 'storage'] },
  { name: 'section username without any password: open', ini: '[storage]\nusername = store\n', storage: null },
  { name: 'empty section values fall back to the server ones', ini: '[server]\nusername = default\npassword = s3cret\n[storage]\nusername =\npassword =\n', storage: ['default', 's3cret', 'server', 'server'] },
  { name: 'an empty server password leaves the section open', ini: '[server]\nusername = default\npassword =\n', storage: null },
  { name: 'a section realm', ini: '[server]\nrealm = R1\n[storage]\nrealm = R2\n', storage: null, realm: 'R2' },
  { name: 'the server realm is inherited', ini: '[server]\nrealm = R1\n', storage: null, realm: 'R1' },
  { name: 'the default realm', ini: '', storage: null, realm: DEFAULT_REALM }
]

for (const c of cases) {
  t.test(c.name, async t => {
    const p = table(c.ini).storage
    if (c.storage === null) {
      t.equal(p.auth.on, false)
      t.equal(allows(p, null), true)
    } else {
      const [username, password, usernameFrom, passwordFrom] = c.storage
      t.equal(p.auth.on, true)
      if (!p.auth.on) return
      t.same([p.auth.username, p.auth.usernameFrom, p.auth.passwordFrom], [username, usernameFrom, passwordFrom])
      t.equal(allows(p, { username, password }), true, 'the expected credentials pass')
      t.equal(allows(p, { username, password: password + 'x' }), false, 'a wrong password fails')
      t.equal(allows(p, { username: username + 'x', password }), false, 'a wrong username fails')
      t.equal(allows(p, null), false, 'no credentials fail')
    }
    if (c.realm !== undefined) t.equal(p.realm, c.realm)
  })
}

t.test('a password with no username in the section or server is an error at the password line', async t => {
  t.match(failure('[server]\n\n[storage]\npassword = x\n'), { line: 4, file: 'p.ini', reason: /\[storage\] has a password \(from \[storage\]\) but no username/ })
})

t.test('a server password with no username anywhere is an error at the server password line', async t => {
  t.match(failure('[server]\npassword = x\n[storage]\nusername = s\n'), { line: 2, reason: /\[server\] has a password/ })
})

t.test('a service inherits server credentials, and its own supersede them', async t => {
  const p = table('[server]\nusername = default\npassword = s3cret\n[service.a]\n_type = builtin\n[service.b]\nusername = bee\npassword = bzz\n')
  const a = p.services.get('a')!
  const b = p.services.get('b')!
  t.equal(allows(a, { username: 'default', password: 's3cret' }), true)
  t.equal(allows(b, { username: 'bee', password: 'bzz' }), true)
  t.equal(allows(b, { username: 'default', password: 's3cret' }), false)
})

t.test('the issue example: GMS behaviour for every section', async t => {
  const p = table('[server]\npassword = s3cret\nusername = default\n\n[storage]\nusername = store\n\n[service.request-interaction]\nusername = genesys\npassword = genesys\n')
  t.equal(allows(p.storage, { username: 'store', password: 's3cret' }), true)
  t.equal(allows(p.services.get('request-interaction')!, { username: 'genesys', password: 'genesys' }), true)
  t.equal(allows(p.notification, { username: 'default', password: 's3cret' }), true)
  t.equal(allows(p.server, { username: 'default', password: 's3cret' }), true)
  t.equal(allows(p.storage, { username: 'default', password: 's3cret' }), false)
})

t.test('the challenge quotes the realm as an RFC 7230 quoted-string', async t => {
  t.equal(challengeFor('Genesys Application Configuration Needed'), 'Basic realm="Genesys Application Configuration Needed", charset="UTF-8"')
  t.equal(challengeFor('say "hi" \\ bye'), 'Basic realm="say \\"hi\\" \\\\ bye", charset="UTF-8"')
  t.equal(table('[storage]\nrealm = a"b\n').storage.challenge, 'Basic realm="a\\"b", charset="UTF-8"')
})

t.test('the table keeps no plaintext password', async t => {
  const p = table('[server]\nusername = default\npassword = very-secret-pw\n')
  t.notMatch(JSON.stringify(p, (_k, v) => (Buffer.isBuffer(v) || v?.type === 'Buffer') ? '(digest)' : v), /very-secret-pw/)
})

t.test('request paths map to their sections by prefix', async t => {
  const p = table('[service.ri]\n[service.other]\n')
  const lookup = (id: string) => (id === 'inst-1' ? 'ri' : undefined)
  const at = (url: string): SectionPolicy | null => sectionForPath(url, p, lookup)
  t.equal(at('/genesys/1/storage'), p.storage)
  t.equal(at('/genesys/1/storage/abc/60'), p.storage)
  t.equal(at('/genesys/1/storage?x=1'), p.storage)
  t.equal(at('/genesys/1/notification/subscription'), p.notification)
  t.equal(at('/genesys/1/service/ri'), p.services.get('ri'))
  t.equal(at('/genesys/1/service/other?x=1'), p.services.get('other'))
  t.equal(at('/genesys/1/service/inst-1/extra'), p.services.get('ri'), 'an instance id belongs to its creating service')
  t.equal(at('/genesys/1/service/unknown'), p.server, 'an unknown service name is checked against [server]')
  t.equal(at('/genesys/1/service'), p.server)
  t.equal(at('/genesys/1/node'), p.server)
  t.equal(at('/genesys/1/storagex'), p.server, 'a prefix must end at a segment boundary')
  t.equal(at('/genesys/2/storage/x'), p.server)
  t.equal(at('/other'), p.server, 'paths outside the API use [server] too')
  t.equal(at('/health'), null, 'liveness is open')
  t.equal(at('/health?verbose'), null)
  t.equal(at('/healthz'), p.server)
})
