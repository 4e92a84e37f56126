import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { loadOptionsText } from '../plugins/options-watch.js'
import { parseHashedSecret } from '../plugins/secrets.js'
import { scryptHash } from './helpers/hashes.js'

const CLI = fileURLToPath(new URL('../dist/server.js', import.meta.url))
const run = (args: string[], input?: string) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', input })

t.test('a plaintext password warns once at load, naming the section and not the value', async t => {
  const loaded = loadOptionsText('[server]\nusername = u\npassword = plain-pw-9d2\n[storage]\npassword = other-pw-31\n')
  const warnings = loaded.options.warnings.map(w => w.message)
  t.equal(warnings.filter(m => /plaintext/.test(m)).length, 2)
  t.match(warnings.join('\n'), /\[server\][\s\S]*\[storage\]/)
  t.notMatch(warnings.join('\n'), /plain-pw-9d2|other-pw-31/)
})

t.test('plaintext_passwords = allow accepts plaintext silently', async t => {
  const loaded = loadOptionsText('[server]\nusername = u\npassword = plain-pw-9d2\nplaintext_passwords = allow\n')
  t.same(loaded.options.warnings, [])
})

t.test('plaintext_passwords = deny refuses a plaintext password on its line', async t => {
  let err: { line: number, reason: string } | undefined
  try {
    loadOptionsText('[server]\nplaintext_passwords = deny\nusername = u\n[service.x]\npassword = plain-pw-9d2\n')
  } catch (e) {
    err = e as typeof err
  }
  t.equal(err?.line, 5)
  t.match(err?.reason, /\[service\.x\] is plaintext/)
  t.notMatch(err?.reason, /plain-pw-9d2/)
})

t.test('plaintext_passwords = deny accepts hashes and leaves [dfm] credentials alone', async t => {
  const loaded = loadOptionsText(`[server]\nplaintext_passwords = deny\nusername = u\npassword = ${scryptHash('x')}\n[dfm.up]\nusername = a\npassword = sent-upstream\n`)
  t.equal(loaded.policy.server.auth.on && loaded.policy.server.auth.verifier.kind, 'scrypt')
})

t.test('hash-password reads stdin and prints a hash of it', async t => {
  const res = run(['hash-password', '--algorithm', 'bcrypt'], 'typed-pw-0a1\n')
  t.equal(res.status, 0, res.stderr)
  const hash = res.stdout.trim()
  t.match(hash, /^\$2b\$12\$/)
  t.equal(await parseHashedSecret(hash).verify('typed-pw-0a1'), true, 'the trailing newline is not part of it')
})

t.test('hash-password refuses a password given on the command line', async t => {
  const res = run(['hash-password', 'argv-pw-77'])
  t.equal(res.status, 64)
  t.match(res.stderr, /no password argument/)
  t.notMatch(res.stdout + res.stderr, /argv-pw-77/)
})

t.test('generate-password prints a 32-byte base64url password and a hash of it', async t => {
  const res = run(['generate-password'])
  t.equal(res.status, 0, res.stderr)
  const [, password] = /^password: (\S+)$/m.exec(res.stdout) ?? []
  const [, hash] = /^hash: +(\S+)$/m.exec(res.stdout) ?? []
  t.match(password, /^[A-Za-z0-9_-]{43}$/)
  t.equal(await parseHashedSecret(hash!).verify(password!), true)
})

t.test('authorization, proxy-authorization and cookie headers are redacted from log lines', async t => {
  const { LogCapture, basic } = await import('./helpers/app.js')
  const { buildServer, REDACTED_PATHS } = await import('../server.js')
  const logs = new LogCapture()
  // An embedding app whose request serializer keeps the headers: the redaction is what protects them.
  const app = await buildServer({ options: '[server]\n', logger: { stream: logs, redact: REDACTED_PATHS, serializers: { req: (r: unknown) => r as { method: string, url: string } } } })
  t.teardown(() => app.close())
  const headers = { authorization: basic('u', 'redact-pw-1'), 'proxy-authorization': basic('p', 'redact-pw-2'), cookie: 'session=redact-pw-3', accept: '*/*' }
  app.log.info({ req: { headers } }, 'a line that carries headers')
  t.match(logs.lines.at(-1), { req: { headers: { authorization: '[Redacted]', 'proxy-authorization': '[Redacted]', cookie: '[Redacted]', accept: '*/*' } } })
  for (const secret of ['redact-pw-1', 'redact-pw-2', 'redact-pw-3']) t.notOk(logs.contains(secret), secret)
})

t.test('a reload with an unparsable hash is rejected on its line and the last good hash stays in force', async t => {
  const { appOnFile, basic } = await import('./helpers/app.js')
  const { writeFile } = await import('node:fs/promises')
  const good = scryptHash('reload-pw-6e0')
  const h = await appOnFile(t, `[server]\nusername = u\npassword = ${good}\n`)
  const rejected = h.nextReloadError()
  await writeFile(h.file, `[server]\nusername = u\npassword = ${good.slice(0, 20)}\n`)
  const { error } = await rejected
  t.equal(error.line, 3)
  t.match(error.reason, /scrypt/)
  const res = await h.app.inject({ url: '/genesys/1/node', headers: { authorization: basic('u', 'reload-pw-6e0') } })
  t.equal(res.statusCode, 200)
})
