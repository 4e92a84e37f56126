import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { appOnText, basic, tempDir } from './helpers/app.js'
import { freePort } from './helpers/redis.js'

// The built CLI, as `npm start` and the `gms-gate` bin run it (npm test builds first).
const CLI = fileURLToPath(new URL('../dist/server.js', import.meta.url))
const EXAMPLE = '[server]\npassword = s3cret\nusername = default\n\n[storage]\nusername = store\n\n[service.request-interaction]\nusername = genesys\npassword = genesys\n_type = builtin\n_service = match-interaction\n'

async function configFile (t: Test, text: string): Promise<string> {
  const file = join(await tempDir(t), 'config.ini')
  await writeFile(file, text)
  return file
}

const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' })

t.test('check prints the effective policy per section and never a password', async t => {
  const file = await configFile(t, EXAMPLE)
  const res = run('check', '--config', file)
  t.equal(res.status, 0, res.stderr)
  t.match(res.stdout, /valid/)
  t.match(res.stdout, /\[storage\]\s+\/genesys\/1\/storage\/\.\.\.\s+Genesys Application Configuration Needed\s+default\s+on\s+store\s+\[storage\]\s+set \(plaintext\) from \[server\]/)
  t.match(res.stdout, /\[service\.request-interaction\].*on\s+genesys\s+\[service\.request-interaction\]\s+set \(plaintext\) from \[service\.request-interaction\]/)
  t.match(res.stdout, /\[notification\].*on\s+default\s+\[server\]\s+set \(plaintext\) from \[server\]/)
  t.notMatch(res.stdout, /s3cret/)
})

t.test('check lists warnings with file and line', async t => {
  const file = await configFile(t, '[server]\ncolour = blue\n')
  const res = run('check', '--config', file)
  t.equal(res.status, 0)
  t.match(res.stdout, `warning: ${file}:2: unknown option "colour" in [server] is ignored`)
})

t.test('check exits 2 on an invalid file with file:line:reason', async t => {
  const file = await configFile(t, '[server]\npassword = s3cret\n')
  const res = run('check', '--config', file)
  t.equal(res.status, 2)
  t.match(res.stderr, `${file}:2: [server] has a password`)
  t.notMatch(res.stderr + res.stdout, /s3cret/)
})

t.test('check --json prints the rows, the warnings and the options hash, never a password', async t => {
  const file = await configFile(t, `${EXAMPLE}colour = blue\n`)
  const res = run('check', '--config', file, '--json')
  t.equal(res.status, 0, res.stderr)
  const report = JSON.parse(res.stdout)
  t.equal(report.file, file)
  t.match(report.optionsHash, /^[0-9a-f]{16}$/)
  t.match(report.rows, [{ section: '[storage]', auth: 'on', username: 'store', password: 'set (plaintext) from [server]' }])
  t.ok(report.warnings.some((w: { line: number, message: string }) => w.line === EXAMPLE.split('\n').length && w.message.includes('"colour"')))
  t.notMatch(res.stdout, /s3cret/)
})

t.test('check --json on an invalid file prints a JSON error on stdout and exits 2', async t => {
  const file = await configFile(t, '[server]\npassword = s3cret\n')
  const res = run('check', '--config', file, '--json')
  t.equal(res.status, 2)
  t.match(JSON.parse(res.stdout), { error: { file, line: 2, reason: /has a password/ } })
  t.notMatch(res.stderr + res.stdout, /s3cret/)
})

t.test('diff exits 0 when no access changes', async t => {
  const before = await configFile(t, EXAMPLE)
  const after = await configFile(t, EXAMPLE.replace('[storage]\n', '[storage]\n; a comment\n'))
  const res = run('diff', before, after)
  t.equal(res.status, 0, res.stderr)
  t.equal(res.stdout, 'no policy changes\n')
})

t.test('diff exits 1 and names the sections whose access changes, never a password', async t => {
  const before = await configFile(t, EXAMPLE)
  const after = await configFile(t, EXAMPLE.replace('password = s3cret', 'password = n3wsecret'))
  const res = run('diff', before, after)
  t.equal(res.status, 1, res.stderr)
  t.match(res.stdout, /\[storage\]\s+password changed/)
  t.notMatch(res.stdout, /\[service\.request-interaction\]/, 'its own password did not change')
  t.notMatch(res.stdout, /s3cret|n3wsecret/)
})

t.test('diff exits 2 naming the invalid file', async t => {
  const good = await configFile(t, EXAMPLE)
  const bad = await configFile(t, '[server]\nport = nope\n')
  const res = run('diff', good, bad)
  t.equal(res.status, 2)
  t.match(res.stderr, `invalid NEW options: ${bad}:2: port in [server]`)
})

t.test('diff --json exits 1 and gives each change its section, before and after, and who gains or loses, never a password', async t => {
  const before = await configFile(t, EXAMPLE)
  const after = await configFile(t, EXAMPLE.replace('[storage]\nusername = store\n', '[storage]\nusername = keeper\n'))
  const res = run('diff', before, after, '--json')
  t.equal(res.status, 1, res.stderr)
  t.equal(res.stderr, '')
  const report = JSON.parse(res.stdout)
  t.match(report, { old: before, new: after, accessChanged: true })
  t.same(report.changes, [{
    section: '[storage]',
    kind: 'username',
    access: true,
    before: { auth: true, username: 'store', passwordKind: 'plaintext', realm: 'Genesys Application Configuration Needed' },
    after: { auth: true, username: 'keeper', passwordKind: 'plaintext', realm: 'Genesys Application Configuration Needed' },
    gains: [{ username: 'keeper' }],
    loses: [{ username: 'store' }],
    message: 'username changed: "store" loses access, "keeper" gains it'
  }])
  t.notMatch(res.stdout, /s3cret/)
})

t.test('diff --json on a password change names it and prints neither value', async t => {
  const before = await configFile(t, EXAMPLE)
  const after = await configFile(t, EXAMPLE.replace('password = s3cret', 'password = n3wsecret'))
  const res = run('diff', before, after, '--json')
  t.equal(res.status, 1, res.stderr)
  const report = JSON.parse(res.stdout)
  t.same(report.changes.map((c: { section: string, kind: string }) => `${c.section} ${c.kind}`), ['[server] password', '[storage] password', '[notification] password'])
  t.match(report.changes[1], { loses: [{ username: 'store', password: 'old' }], gains: [{ username: 'store', password: 'new' }] })
  t.notMatch(res.stdout, /s3cret|n3wsecret/)
})

t.test('diff --json exits 0 with accessChanged false when only a realm changes', async t => {
  const before = await configFile(t, EXAMPLE)
  const after = await configFile(t, EXAMPLE.replace('[storage]\n', '[storage]\nrealm = Store\n'))
  const res = run('diff', before, after, '--json')
  t.equal(res.status, 0, res.stderr)
  const report = JSON.parse(res.stdout)
  t.equal(report.accessChanged, false)
  t.match(report.changes, [{ section: '[storage]', kind: 'realm', access: false, gains: [], loses: [] }])
})

t.test('diff --json with nothing changed prints no changes and exits 0', async t => {
  const file = await configFile(t, EXAMPLE)
  const res = run('diff', file, file, '--json')
  t.equal(res.status, 0, res.stderr)
  t.same(JSON.parse(res.stdout), { old: file, new: file, accessChanged: false, changes: [] })
})

t.test('diff --json on an invalid file prints a JSON error naming OLD or NEW on stdout and exits 2', async t => {
  const good = await configFile(t, EXAMPLE)
  const bad = await configFile(t, '[server]\npassword = s3cret\n')
  for (const [args, which] of [[[bad, good], 'OLD'], [[good, bad], 'NEW']] as const) {
    const res = run('diff', ...args, '--json')
    t.equal(res.status, 2)
    t.equal(res.stderr, '', 'nothing on stderr')
    const { error } = JSON.parse(res.stdout)
    t.same(Object.keys(error).sort(), ['file', 'line', 'reason', 'which'])
    t.match(error, { file: bad, line: 2, reason: /has a password/, which })
    t.notMatch(res.stdout, /s3cret/)
  }
})

t.test('serve exits 2 on an invalid file, before listening', async t => {
  const file = await configFile(t, '[server]\nport = nope\n')
  const res = run('serve', '--config', file)
  t.equal(res.status, 2)
  t.match(res.stderr, `${file}:2: port in [server]`)
})

t.test('serve refuses a port that is not a number', async t => {
  const res = run('serve', '--port', 'abc')
  t.equal(res.status, 64)
})

t.test('serve listens on --port and --host and answers the GMS challenge', async t => {
  const file = await configFile(t, EXAMPLE)
  const child = spawn(process.execPath, [CLI, 'serve', '--config', file, '--port', '0', '--host', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill() })
  let out = ''
  let url: string | undefined
  child.stdout.setEncoding('utf8')
  while (url === undefined) {
    const [chunk] = await once(child.stdout, 'data') as [string]
    out += chunk
    url = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1]
  }
  const denied = await fetch(`${url}/genesys/1/storage/x`)
  t.equal(denied.status, 401)
  t.equal(denied.headers.get('www-authenticate'), 'Basic realm="Genesys Application Configuration Needed", charset="UTF-8"')
  t.equal((await fetch(`${url}/genesys/1/node`, { headers: { authorization: basic('default', 's3cret') } })).status, 200)
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  t.same(await exited, [0, null], 'SIGTERM closes the server and exits 0')
})

t.test('serve listens on --port instead of [server] port, and on the other ports and metrics_port', async t => {
  const [other, metrics] = [await freePort(), await freePort()]
  t.not(other, metrics)
  const file = await configFile(t, `${EXAMPLE.replace('[server]\n', `[server]\nport = 8080\nports = ${other}\nmetrics_port = ${metrics}\n`)}`)
  const child = spawn(process.execPath, [CLI, 'serve', '--config', file, '--port', '0', '--host', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill() })
  let out = ''
  child.stdout.setEncoding('utf8')
  while (!out.includes(`127.0.0.1:${metrics}`)) out += (await once(child.stdout, 'data') as [string])[0]
  t.equal((out.match(/Server listening at/g) ?? []).length, 3)
  t.equal((await fetch(`http://127.0.0.1:${other}/genesys/1/node`, { headers: { authorization: basic('default', 's3cret') } })).status, 200)
  t.equal((await fetch(`http://127.0.0.1:${metrics}/metrics`)).status, 200)
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  t.same(await exited, [0, null])
})

t.test('the shipped config.ini is valid and protects at least one service', async t => {
  const res = run('check', '--config', fileURLToPath(new URL('../config.ini', import.meta.url)))
  t.equal(res.status, 0, res.stderr)
  t.match(res.stdout, /\[service\.request-interaction\].*\bon\b/)
})

t.test('a 5xx reply is logged with its error, while requests and 4xx replies write no line', async t => {
  const { app, logs } = await appOnText(t, '[server]\n')
  app.get('/fails', async () => { throw Object.assign(new Error('backend down'), { statusCode: 503 }) })
  app.get('/refuses', async () => { throw Object.assign(new Error('bad input'), { statusCode: 400 }) })
  const before = logs.lines.length
  t.equal((await app.inject('/refuses')).statusCode, 400)
  t.equal((await app.inject('/health')).statusCode, 200)
  t.equal(logs.lines.length, before, 'nothing logged for a 200 or a 400')
  t.equal((await app.inject({ url: '/fails', headers: { authorization: 'Basic c2VjcmV0OnNlY3JldA==' } })).statusCode, 503)
  const line = logs.lines.at(-1)!
  t.match(line, { level: 50, msg: 'backend down', err: { message: 'backend down' } })
  t.notOk(logs.contains('c2VjcmV0OnNlY3JldA=='), 'never the Authorization header')
})
