import t from 'tap'
import { loadOptionsText } from '../plugins/options-watch.js'
import { describePolicy, formatPolicyTable, formatPortsReport, policyReport, unusedSectionWarnings } from '../plugins/policy-report.js'
import { cheapHashes } from './helpers/hashes.js'

const report = (ini: string) => policyReport(loadOptionsText(ini, 'r.ini'))

t.test('the password column names the kind of secret and where it came from, never its value', async t => {
  const hashes = await cheapHashes('hunter22')
  const ini = `[server]\nusername = default\npassword = plain-secret\n[storage]\npassword = ${hashes.scrypt}\n` +
    `[notification]\npassword = ${hashes.argon2id}\n[service.b]\npassword = ${hashes.bcrypt}\n_type = builtin\n_service = match-interaction\n`
  const rows = describePolicy(loadOptionsText(ini))
  const byName = new Map(rows.map(r => [r.section, r.password]))
  t.equal(byName.get('[server]'), 'set (plaintext) from [server]')
  t.equal(byName.get('[storage]'), 'set (scrypt) from [storage]')
  t.equal(byName.get('[notification]'), 'set (argon2id) from [notification]')
  t.equal(byName.get('[service.b]'), 'set (bcrypt) from [service.b]')
  const text = JSON.stringify(rows) + formatPolicyTable(rows)
  for (const secret of ['plain-secret', hashes.scrypt, hashes.argon2id, hashes.bcrypt]) t.notOk(text.includes(secret))
})

t.test('a section without a password says not set', async t => {
  const rows = describePolicy(loadOptionsText('[server]\nusername = u\n'))
  t.ok(rows.every(r => r.password === 'not set' && r.auth === 'off'))
})

t.test('a dfm section no service names in _upstream is a warning with its line', async t => {
  const ini = '[server]\n[service.cb]\n_type = http\n_service = http://127.0.0.1:7000/cb\n_upstream = used\n[dfm.used]\nusername = a\npassword = b\n[dfm.spare]\nusername = a\npassword = b\n'
  t.same(report(ini).warnings.filter(w => w.message.includes('not used')), [
    { file: 'r.ini', line: 9, message: '[dfm.spare] is not used: no service names it in _upstream' }
  ])
})

t.test('a resource section no service names in _resource_group is a warning', async t => {
  const ini = '[resource.pool]\n_access_number = 1\n'
  t.same(unusedSectionWarnings(loadOptionsText(ini, 'r.ini').options), [
    { file: 'r.ini', line: 1, message: '[resource.pool] is not used: no service names it in _resource_group' }
  ])
})

t.test('the report carries the load warnings, the rows and the options hash', async t => {
  const loaded = loadOptionsText('[server]\ncolour = blue\n[mystery]\n', 'r.ini')
  const r = policyReport(loaded)
  t.equal(r.file, 'r.ini')
  t.equal(r.optionsHash, loaded.options.hash)
  t.equal(r.rows.length, 3)
  t.match(r.warnings.map(w => `${w.line}: ${w.message}`), ['2: unknown option "colour" in [server] is ignored', '3: unknown section [mystery] is ignored'])
})

t.test('the table lines up its columns under a header', async t => {
  const lines = formatPolicyTable(describePolicy(loadOptionsText('[server]\n'))).split('\n')
  t.match(lines[0], /^SECTION\s+ROUTES\s+REALM\s+REALM FROM\s+AUTH\s+USERNAME\s+USERNAME FROM\s+PASSWORD$/)
  t.equal(lines[1]!.indexOf('/genesys'), lines[0]!.indexOf('ROUTES'))
})

t.test('the report lists the listening ports and the port restrictions, most specific first', async t => {
  const loaded = loadOptionsText('[server]\nport = 8080\nports = 8100-8101\nmetrics_port = 9100\n[port_restrictions]\n/genesys/1/* = 8080, 8100-8101\n/genesys/1/admin/* = 8100\n/genesys/1/node = 8101\n')
  const { ports } = policyReport(loaded)
  t.same(ports, {
    host: '127.0.0.1',
    listen: [8080, 8100, 8101],
    metricsPort: 9100,
    restrictions: [
      { pattern: '/genesys/1/node', ports: '8101', line: 8 },
      { pattern: '/genesys/1/admin/*', ports: '8100', line: 7 },
      { pattern: '/genesys/1/*', ports: '8080, 8100-8101', line: 6 }
    ]
  })
  t.equal(formatPortsReport(ports), 'listening on 127.0.0.1 ports 8080, 8100, 8101; /metrics only, without credentials, on 9100\n' +
    '/genesys/1/node only on 8101\n/genesys/1/admin/* only on 8100\n/genesys/1/* only on 8080, 8100-8101')
  t.equal(formatPortsReport(policyReport(loadOptionsText('[server]\n')).ports), 'listening on 127.0.0.1 port 8080\nno [port_restrictions]: every path on every port')
})
