import t from 'tap'
import { loadOptionsText } from '../plugins/options-watch.js'
import { diffPolicy, formatPolicyDiff, policyDiffReport } from '../plugins/policy-diff.js'
import { cheapHashes } from './helpers/hashes.js'

const diff = (before: string, after: string) => diffPolicy(loadOptionsText(before), loadOptionsText(after))
const SERVICE = '_type = builtin\n_service = match-interaction\n'

t.test('identical files have no changes', async t => {
  const ini = '[server]\nusername = u\npassword = secret-one\n'
  t.same(diff(ini, ini), [])
  t.equal(formatPolicyDiff([]), 'no policy changes')
})

t.test('a password set in [server] turns auth on for every section that inherits it', async t => {
  const changes = diff('[server]\nusername = u\n', '[server]\nusername = u\npassword = secret-one\n')
  t.same(changes.map(c => [c.section, c.kind, c.access]), [
    ['[server]', 'auth-on', true], ['[storage]', 'auth-on', true], ['[notification]', 'auth-on', true]
  ])
  t.match(changes[0]!.message, 'auth turned on: only "u" may pass')
})

t.test('a password removed turns auth off', async t => {
  const changes = diff('[storage]\nusername = u\npassword = secret-one\n', '[storage]\nusername = u\n')
  t.same(changes.map(c => c.kind), ['auth-off'])
  t.match(changes[0]!.message, 'anyone may pass')
})

t.test('a changed username says who loses and who gains access', async t => {
  const changes = diff('[storage]\nusername = a\npassword = secret-one\n', '[storage]\nusername = b\npassword = secret-one\n')
  t.same(changes.map(c => [c.kind, c.message]), [['username', 'username changed: "a" loses access, "b" gains it']])
})

t.test('a changed password is reported without either value', async t => {
  const changes = diff('[storage]\nusername = a\npassword = secret-one\n', '[storage]\nusername = a\npassword = secret-two\n')
  t.same(changes.map(c => c.kind), ['password'])
  const text = formatPolicyDiff(changes)
  t.match(text, /\[storage\]\s+password changed/)
  t.notMatch(text, /secret-/)
})

t.test('a password replaced by its hash counts as a change and names both kinds, not the values', async t => {
  const { scrypt } = await cheapHashes('secret-one')
  const changes = diff('[storage]\nusername = a\npassword = secret-one\n', `[storage]\nusername = a\npassword = ${scrypt}\n`)
  t.same(changes.map(c => c.message), ['password changed (plaintext → scrypt): callers with the old one lose access'])
})

t.test('the same password moved from a section to [server] is no change', async t => {
  const changes = diff('[server]\nusername = a\n[storage]\npassword = secret-one\n', '[server]\nusername = a\npassword = secret-one\n')
  t.same(changes.filter(c => c.section === '[storage]'), [])
})

t.test('a realm change is reported but changes no access', async t => {
  const changes = diff('[server]\nrealm = A\n', '[server]\nrealm = B\n')
  t.ok(changes.length > 0)
  t.ok(changes.every(c => c.kind === 'realm' && !c.access))
})

t.test('service sections added and removed', async t => {
  const changes = diff(`[service.old]\n${SERVICE}`, `[service.new]\nusername = u\npassword = secret-one\n${SERVICE}`)
  t.same(changes.map(c => [c.section, c.kind, c.access]), [['[service.new]', 'added', true], ['[service.old]', 'removed', true]])
  t.match(changes[0]!.message, 'only "u" may pass')
})

t.test('each change says who gains and who loses access', async t => {
  const who = (before: string, after: string) => diff(before, after).filter(c => c.access).map(c => [c.section, c.kind, c.gains, c.loses])
  t.same(who('[storage]\nusername = u\n', '[storage]\nusername = u\npassword = secret-one\n'), [['[storage]', 'auth-on', [], [{ anyone: true }]]])
  t.same(who('[storage]\nusername = u\npassword = secret-one\n', '[storage]\nusername = u\n'), [['[storage]', 'auth-off', [{ anyone: true }], []]])
  t.same(who('[storage]\nusername = a\npassword = secret-one\n', '[storage]\nusername = b\npassword = secret-one\n'),
    [['[storage]', 'username', [{ username: 'b' }], [{ username: 'a' }]]])
  t.same(who('[storage]\nusername = a\npassword = secret-one\n', '[storage]\nusername = a\npassword = secret-two\n'),
    [['[storage]', 'password', [{ username: 'a', password: 'new' }], [{ username: 'a', password: 'old' }]]])
  t.same(who(`[service.old]\n${SERVICE}`, `[service.new]\nusername = u\npassword = secret-one\n${SERVICE}`), [
    ['[service.new]', 'added', [{ username: 'u' }], []],
    ['[service.old]', 'removed', [], [{ anyone: true }]]
  ])
})

t.test('a change shows the section before and after with the password kind, never its value', async t => {
  const { scrypt } = await cheapHashes('secret-one')
  const [change] = diff('[storage]\nusername = a\npassword = secret-one\n', `[storage]\nusername = a\npassword = ${scrypt}\nrealm = R\n`)
  t.same(change!.before, { auth: true, username: 'a', passwordKind: 'plaintext', realm: 'Genesys Application Configuration Needed' })
  t.same(change!.after, { auth: true, username: 'a', passwordKind: 'scrypt', realm: 'R' })
  const json = JSON.stringify(policyDiffReport(diff('[storage]\nusername = a\npassword = secret-one\n', `[storage]\nusername = a\npassword = ${scrypt}\n`)))
  t.notMatch(json, 'secret-one')
  t.notMatch(json, scrypt)
})

t.test('the report says whether some access changed: a realm change alone does not', async t => {
  t.same(policyDiffReport([]), { accessChanged: false, changes: [] })
  const realm = diff('[server]\nrealm = A\n', '[server]\nrealm = B\n')
  t.equal(policyDiffReport(realm).accessChanged, false)
  t.equal(policyDiffReport(diff('[server]\nusername = u\n', '[server]\nusername = u\npassword = secret-one\n')).accessChanged, true)
})

t.test('a port restriction added, changed or removed changes access, and says where the path is served', async t => {
  const head = '[server]\nport = 8080\nports = 8100\n'
  const changes = diff(`${head}[port_restrictions]\n/genesys/1/admin/* = 8100\n/genesys/1/storage* = 8080\n`,
    `${head}[port_restrictions]\n/genesys/1/storage* = 8080, 8100\n/genesys/1/service/* = 8080\n`)
  t.same(changes.map(c => [c.section, c.kind, c.access, c.message]), [
    ['[port_restrictions]', 'ports', true, '/genesys/1/storage* only on 8080, 8100 (was only on 8080)'],
    ['[port_restrictions]', 'ports', true, '/genesys/1/service/* only on 8080 (was every port)'],
    ['[port_restrictions]', 'ports', true, '/genesys/1/admin/* on every port (was only on 8100)']
  ])
  t.same(changes[2]!.ports, { pattern: '/genesys/1/admin/*', before: '8100', after: null })
  t.equal(policyDiffReport(changes).accessChanged, true)
})

t.test('a change of listening ports is reported, to apply at the next restart', async t => {
  const changes = diff('[server]\nport = 8080\n', '[server]\nport = 8080\nports = 8100\nmetrics_port = 9100\n')
  t.same(changes.map(c => [c.section, c.kind, c.message]), [
    ['[server]', 'listen', 'listening on 127.0.0.1 8080, 8100 + metrics 9100 (was 127.0.0.1 8080; applies at the next restart)']
  ])
})
