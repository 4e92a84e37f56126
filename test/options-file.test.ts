import t from 'tap'
import { changedSections, OptionsError, parseOptions, readOptionsFile } from '../plugins/options-file.js'

function errorOf (text: string): OptionsError {
  try {
    parseOptions(text, 'test.ini')
  } catch (err) {
    if (err instanceof OptionsError) return err
    throw err
  }
  throw new Error('expected an OptionsError')
}

t.test('sections and options are read with their line numbers', async t => {
  const o = parseOptions('; comment\n[server]\nusername = default\n\n[service.request-interaction]\npassword = genesys\n')
  t.same([...o.sections.keys()], ['server', 'service.request-interaction'])
  t.equal(o.sections.get('server')!.values.username, 'default')
  t.equal(o.sections.get('server')!.lines.username, 3)
  t.equal(o.sections.get('service.request-interaction')!.line, 5)
})

t.test('an empty value counts as not set', async t => {
  const o = parseOptions('[server]\npassword =\nusername = \n')
  t.same(o.sections.get('server')!.values, {})
  t.equal(o.sections.get('server')!.lines.password, 2)
})

t.test('values are decoded as ini does: quotes, escapes and inline comments', async t => {
  const o = parseOptions('[server]\npassword = "pa;ss#word"\nrealm = My realm ; a comment\nusername = us\\;er\n')
  const v = o.sections.get('server')!.values
  t.equal(v.password, 'pa;ss#word')
  t.equal(v.realm, 'My realm')
  t.equal(v.username, 'us;er')
})

t.test('true, false and null stay strings', async t => {
  const v = parseOptions('[server]\npassword = true\nrealm = null\n').sections.get('server')!.values
  t.equal(v.password, 'true')
  t.equal(v.realm, 'null')
})

t.test('CRLF line endings are accepted', async t => {
  const o = parseOptions('[server]\r\nusername = a\r\npassword = b\r\n')
  t.equal(o.sections.get('server')!.values.password, 'b')
})

const syntaxErrors: Array<[string, string, number, RegExp]> = [
  ['a line without "="', '[server]\nusername = a\npassword s3cret\n', 3, /no "="/],
  ['an unterminated section header', '[server]\n[service.x\nusername = a\n', 2, /malformed section header/],
  ['an option before any section', 'password = x\n[server]\n', 1, /before any \[section\]/],
  ['a line with no option name', '[server]\n= x\n', 2, /option name is missing/],
  ['a duplicate option', '[server]\nusername = a\n\nusername = b\n', 4, /duplicate option "username" in \[server\] \(first set at line 2\)/],
  ['an array option', '[server]\nusername[] = a\n', 2, /array option/],
  ['an empty section name', '[]\n', 1, /empty section name/],
  ['a service name with a slash', '[service.a/b]\n', 1, /service name/],
  ['a username with a colon', '[server]\nusername = a:b\n', 2, /contains ":"/],
  ['a realm with a control character', '[storage]\nrealm = "a\\u0007b"\n', 2, /realm in \[storage\] contains a control character/],
  ['a port that is not a number', '[server]\nport = http\n', 2, /port in \[server\]/],
  ['a port out of range', '[server]\nport = 70000\n', 2, /port in \[server\]/],
  ['a __proto__ option', '[server]\n__proto__ = x\n', 2, /not a valid option name/]
]
for (const [name, text, line, reason] of syntaxErrors) {
  t.test(`${name} is an error naming file and line`, async t => {
    const err = errorOf(text)
    t.equal(err.file, 'test.ini')
    t.equal(err.line, line)
    t.match(err.reason, reason)
    t.equal(err.code, 'GMS_GATE_BAD_OPTIONS')
    t.match(err.message, new RegExp(`^test\\.ini:${line}: `))
  })
}

t.test('a secret typed without "=" never appears in the error', async t => {
  const err = errorOf('[server]\nusername = a\npassword s3cret-value\n')
  t.notMatch(err.message, /s3cret-value/)
})

t.test('unknown sections and options are kept and warned about once each', async t => {
  const o = parseOptions('[server]\nusername = a\ncolour = blue\n[metrics]\nport = 9\n', 'w.ini')
  t.same(o.warnings.map(w => [w.line, w.message]), [
    [3, 'unknown option "colour" in [server] is ignored'],
    [4, 'unknown section [metrics] is ignored']
  ])
  t.equal(o.sections.get('server')!.values.colour, 'blue')
})

t.test('service options starting with "_" are not unknown', async t => {
  t.same(parseOptions('[service.x]\n_type = builtin\n').warnings, [])
})

t.test('the listen address defaults to 127.0.0.1:8080', async t => {
  t.same(parseOptions('').listen, { host: '127.0.0.1', port: 8080, ports: [8080], metricsPort: null })
  t.same(parseOptions('[server]\nhost = 0.0.0.0\nport = 9000\n').listen, { host: '0.0.0.0', port: 9000, ports: [9000], metricsPort: null })
})

t.test('the options hash changes with options but never depends on a secret value', async t => {
  const a = parseOptions('[server]\nusername = a\npassword = one\n').hash
  t.equal(parseOptions('[server]\nusername = a\npassword = two\n').hash, a)
  t.not(parseOptions('[server]\nusername = b\npassword = one\n').hash, a)
  t.match(a, /^[0-9a-f]{16}$/)
})

t.test('the snapshot is frozen', async t => {
  const o = parseOptions('[server]\nusername = a\n')
  t.throws(() => { (o.sections.get('server')!.values as Record<string, string>).username = 'b' })
})

t.test('a missing file is an error naming the file', async t => {
  const err = await readOptionsFile('/nonexistent/gms.ini').catch((e: unknown) => e)
  t.match(err, { file: '/nonexistent/gms.ini', line: 0, reason: 'file not found' })
})

t.test('changed sections lists added, removed and modified sections by name', async t => {
  const before = parseOptions('[server]\nusername = a\n[storage]\nrealm = s\n[service.x]\n_type = builtin\n')
  const after = parseOptions('[server]\nusername = b\n[storage]\nrealm = s\n[service.y]\n_type = builtin\n')
  t.same(changedSections(before, after), ['server', 'service.x', 'service.y'])
  t.same(changedSections(before, before), [])
})

t.test('a realm with a character outside ISO-8859-1 is an error: no header could carry it', async t => {
  t.match(errorOf('[storage]\nrealm = Caisse €\n'), { line: 2, reason: /outside ISO-8859-1/ })
  t.equal(parseOptions('[storage]\nrealm = Société Générale\n').sections.get('storage')!.values.realm, 'Société Générale')
})
