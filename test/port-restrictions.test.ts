import { rename, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import t from 'tap'
import { parseOptions } from '../plugins/options-file.js'
import { loadOptionsText } from '../plugins/options-watch.js'
import { compilePortRules, portDecision, portRuleFor, requestPath } from '../plugins/port-restrictions.js'
import { parsePortList, portsOutside, formatPortList } from '../plugins/port-list.js'
import { appOnFile, appOnText, basic } from './helpers/app.js'
import { freePort } from './helpers/redis.js'

const rulesOf = (ini: string) => compilePortRules(parseOptions(ini))

t.test('a port list takes single ports and ranges, comma separated', async t => {
  t.same(parsePortList('8080'), [{ from: 8080, to: 8080 }])
  t.same(parsePortList('92-98,100'), [{ from: 92, to: 98 }, { from: 100, to: 100 }])
  t.same(parsePortList(' 8100 - 8102 , 8080 '), [{ from: 8100, to: 8102 }, { from: 8080, to: 8080 }])
  for (const bad of ['', 'http', '80-', '0', '70000', '90-80', '80;81', '8080 8081']) {
    t.type(parsePortList(bad), 'string', `${JSON.stringify(bad)} is refused`)
  }
})

t.test('the ports of a list not listened on are named as ranges', async t => {
  t.equal(formatPortList(portsOutside([{ from: 8080, to: 8090 }], [8080, 8085, 8100])), '8081-8084, 8086-8090')
  t.same(portsOutside([{ from: 8080, to: 8081 }], [8080, 8081]), [])
})

t.test('[server] ports lists every API port; port comes first, each port once', async t => {
  t.same(parseOptions('[server]\nports = 8100-8102\n').listen.ports, [8100, 8101, 8102])
  t.equal(parseOptions('[server]\nports = 8100-8102\n').listen.port, 8100)
  t.same(parseOptions('[server]\nport = 8080\nports = 8100, 8080\n').listen.ports, [8080, 8100])
  t.equal(parseOptions('[server]\nmetrics_port = 9100\n').listen.metricsPort, 9100)
})

t.test('bad ports, too many ports and a metrics port among the API ports are errors with their line', async t => {
  const cases: Array<[string, number, RegExp]> = [
    ['[server]\nports = 80-\n', 2, /ports in \[server\] expected ports/],
    ['[server]\n\nports = 8000-9000\n', 3, /more than 32 ports/],
    ['[server]\nport = 8080\nmetrics_port = 8080\n', 3, /must differ from the API ports/],
    ['[server]\nmetrics_port = 0\n', 2, /metrics_port in \[server\] must be a number from 1 to 65535/]
  ]
  for (const [ini, line, reason] of cases) {
    t.throws(() => parseOptions(ini), { name: 'OptionsError', line, message: reason }, ini)
  }
})

t.test('[port_restrictions] patterns must be paths with "*" only at the end, and name valid ports', async t => {
  const cases: Array<[string, number, RegExp]> = [
    ['[port_restrictions]\ngenesys/1/storage* = 8080\n', 2, /starts with "\/"/],
    ['[port_restrictions]\n/genesys/*/storage = 8080\n', 2, /may only end/],
    ['[port_restrictions]\n/genesys/1/storage* = 80-\n', 2, /expected ports/],
    ['[port_restrictions]\n\n/genesys/1/storage* =\n', 3, /has no ports/]
  ]
  for (const [ini, line, reason] of cases) {
    t.throws(() => loadOptionsText(ini), { name: 'OptionsError', line, message: reason }, ini)
  }
})

t.test('the most specific pattern governs a path; /x/* also covers /x', async t => {
  const { rules } = rulesOf('[server]\nports = 8080-8090, 8100\n[port_restrictions]\n/genesys/1/service/* = 8080-8090\n/genesys/1/service/request-interaction = 8085\n/genesys/1/storage* = 8100\n')
  t.equal(portRuleFor(rules!, '/genesys/1/service/request-interaction')?.pattern, '/genesys/1/service/request-interaction')
  t.equal(portRuleFor(rules!, '/genesys/1/service/request-interaction/x')?.pattern, '/genesys/1/service/*')
  t.equal(portRuleFor(rules!, '/genesys/1/service')?.pattern, '/genesys/1/service/*')
  t.equal(portRuleFor(rules!, '/genesys/1/storage')?.pattern, '/genesys/1/storage*')
  t.equal(portRuleFor(rules!, '/genesys/1/storagex/1')?.pattern, '/genesys/1/storage*')
  t.equal(portRuleFor(rules!, '/genesys/1/node'), undefined)
})

t.test('a request is refused on a port its path is not allowed on, served elsewhere, and unlisted paths go anywhere', async t => {
  const { rules } = rulesOf('[server]\nports = 8080, 8100\n[port_restrictions]\n/genesys/1/admin/* = 8100\n')
  t.equal(portDecision('/genesys/1/admin/options', 8100, rules, null), 'serve')
  t.equal(portDecision('/genesys/1/admin/options', 8080, rules, null), 'refuse')
  t.equal(portDecision('/genesys/1/admin/options?x=1', 8080, rules, null), 'refuse')
  t.equal(portDecision('/genesys/1/%61dmin/options', 8080, rules, null), 'refuse', 'percent-encoding does not slip past')
  t.equal(portDecision('/genesys/1/admin/%zz', 8080, rules, null), 'refuse', 'an undecodable path is matched as sent')
  t.equal(portDecision('/genesys/1/admin/options', undefined, rules, null), 'refuse', 'no known local port: refused')
  t.equal(portDecision('/genesys/1/node', 8080, rules, null), 'serve')
  t.equal(portDecision('/genesys/1/node', 8100, rules, null), 'serve')
})

t.test('metrics_port serves /metrics without credentials and nothing else; /metrics is not served elsewhere', async t => {
  t.equal(portDecision('/metrics', 9100, null, 9100), 'open')
  t.equal(portDecision('/genesys/1/node', 9100, null, 9100), 'refuse')
  t.equal(portDecision('/metrics', 8080, null, 9100), 'refuse')
  t.equal(portDecision('/metrics', 8080, null, null), 'serve')
})

t.test('requestPath finds the path the router routes: no query, no fragment, no scheme and host, decoded', async t => {
  t.equal(requestPath('/a%20b?c=%zz'), '/a b')
  t.equal(requestPath('/plain'), '/plain')
  t.equal(requestPath('/genesys/1/node#a'), '/genesys/1/node')
  t.equal(requestPath('http://x/genesys/1/admin/x'), '/genesys/1/admin/x')
  t.equal(requestPath('HTTPS://x:8080/metrics?y'), '/metrics')
  t.equal(requestPath('http://x'), '/')
  t.equal(requestPath('http://x?a=/genesys'), '/')
})

t.test('patterns naming ports gms-gate does not listen on are warnings, with their line', async t => {
  const { warnings } = rulesOf('[server]\nport = 8080\nports = 8100\nmetrics_port = 9100\n[port_restrictions]\n/genesys/1/service/* = 8080-8082\n/genesys/1/admin/* = 8200\n/metrics* = 8080, 9100\n')
  t.match(warnings, [
    { line: 6, message: /names ports gms-gate does not listen on: 8081-8082/ },
    { line: 7, message: /allows none of the ports gms-gate listens on \(8080, 8100\): every request to it answers 404/ },
    { line: 8, message: /names metrics_port 9100/ }
  ])
  t.equal(warnings.length, 3)
  t.same(rulesOf('[server]\nports = 8080, 8100\n[port_restrictions]\n/genesys/1/admin/* = 8100\n').warnings, [])
})

// Over real sockets: the local port of the connection is what the gate looks at.
async function twoPorts (): Promise<[number, number]> {
  const a = await freePort()
  let b = await freePort()
  while (b === a) b = await freePort()
  return [a, b]
}

const CREDS = 'username = op\npassword = op-secret-1\nplaintext_passwords = allow\n'

t.test('over real sockets, a path is answered 404 on a refused port before any credential check', async t => {
  const [api, admin] = await twoPorts()
  const ini = `[server]\n${CREDS}max_failures = 1\nmax_failures_per_ip = 1\nport = ${api}\nports = ${admin}\n[port_restrictions]\n/genesys/1/admin/* = ${admin}\n`
  const { app, logs } = await appOnText(t, ini)
  const addresses = await app.gmsListen({ host: '127.0.0.1' })
  t.equal(addresses.length, 2)
  const good = { authorization: basic('op', 'op-secret-1') }
  const bad = { authorization: basic('op', 'not-it') }

  const refused = await fetch(`http://127.0.0.1:${api}/genesys/1/admin/options`)
  t.equal(refused.status, 404, 'no credentials: 404, not 401')
  t.equal(refused.headers.get('www-authenticate'), null)
  const unknown = await fetch(`http://127.0.0.1:${api}/genesys/1/admin/optionz`, { headers: good })
  t.equal(unknown.status, 404)
  t.equal((await refused.text()).replace('options', 'optionz'), await unknown.text(), 'the same body as a path that does not exist')
  t.equal(refused.headers.get('content-type'), unknown.headers.get('content-type'))
  const refusedUnknown = await fetch(`http://127.0.0.1:${api}/genesys/1/admin/optionz`)
  t.equal(refusedUnknown.status, 404, 'a path with no route under a refused pattern: the same 404')
  t.equal((await refusedUnknown.text()), (await (await fetch(`http://127.0.0.1:${admin}/genesys/1/admin/optionz`, { headers: good })).text()))
  for (let i = 0; i < 3; i++) {
    t.equal((await fetch(`http://127.0.0.1:${api}/genesys/1/admin/options`, { headers: bad })).status, 404, 'bad credentials on a refused port: 404')
  }
  t.equal((await fetch(`http://127.0.0.1:${api}/genesys/1/admin/options`, { headers: good })).status, 404)
  // No failure was counted above (max_failures = 1): the right credentials still pass.
  t.equal((await fetch(`http://127.0.0.1:${admin}/genesys/1/admin/options`, { headers: good })).status, 200)
  t.equal((await fetch(`http://127.0.0.1:${admin}/genesys/1/admin/options`)).status, 401, 'on its port, the usual challenge')
  t.equal((await fetch(`http://127.0.0.1:${api}/genesys/1/node`, { headers: good })).status, 200, 'an unlisted path is served on every port')
  t.equal((await fetch(`http://127.0.0.1:${admin}/genesys/1/node`, { headers: good })).status, 200)
  t.equal(app.gmsGate.portRefusedCount, 7, 'refused: 2 without credentials, 3 with wrong ones, 2 with the right ones')
  t.same(logs.lines.filter(l => l.level >= 40).map(l => l.msg), [], 'no warning for a refused request')
  const metrics = await fetch(`http://127.0.0.1:${admin}/metrics`, { headers: good })
  t.match(await metrics.text(), /^gms_gate_port_refused_total 7$/m)
})

t.test('port restrictions are hot-reloaded: an edit in place, then a rename over the file', async t => {
  const [api, admin] = await twoPorts()
  const head = `[server]\n${CREDS}port = ${api}\nports = ${admin}\n`
  const h = await appOnFile(t, head)
  await h.app.gmsListen({ host: '127.0.0.1' })
  const url = `http://127.0.0.1:${api}/genesys/1/node`
  const good = { authorization: basic('op', 'op-secret-1') }
  t.equal((await fetch(url, { headers: good })).status, 200)

  let reloaded = h.nextReload()
  await writeFile(h.file, `${head}[port_restrictions]\n/genesys/1/node = ${admin}\n`)
  await reloaded
  t.equal((await fetch(url, { headers: good })).status, 404, 'restricted after an edit in place')
  t.equal((await fetch(`http://127.0.0.1:${admin}/genesys/1/node`, { headers: good })).status, 200)

  reloaded = h.nextReload()
  await writeFile(`${h.file}.tmp`, `${head}[port_restrictions]\n/genesys/1/node = ${api}\n`)
  await rename(`${h.file}.tmp`, h.file)
  await reloaded
  t.equal((await fetch(url, { headers: good })).status, 200, 'moved back by temp+rename')
  t.equal((await fetch(`http://127.0.0.1:${admin}/genesys/1/node`, { headers: good })).status, 404)

  const rejected = h.nextReloadError()
  await writeFile(h.file, `${head}[port_restrictions]\n/genesys/1/node = 80-\n`)
  const { error } = await rejected
  t.equal(error.line, 8)
  t.equal((await fetch(url, { headers: good })).status, 200, 'a bad edit keeps the last good restrictions')
  t.equal((await fetch(`http://127.0.0.1:${admin}/genesys/1/node`, { headers: good })).status, 404)
})

t.test('a pattern naming a port not listened on is logged as a warning at load', async t => {
  const [api] = await twoPorts()
  const { logs } = await appOnText(t, `[server]\nport = ${api}\n[port_restrictions]\n/genesys/1/storage* = ${api}, 65000\n`)
  t.ok(logs.lines.some(l => l.level === 40 && l.msg?.includes('does not listen on: 65000')))
})

t.test('metrics_port answers /metrics without credentials, 404 for the rest; the API ports no longer serve /metrics', async t => {
  const [api, metrics] = await twoPorts()
  const { app } = await appOnText(t, `[server]\n${CREDS}port = ${api}\nmetrics_port = ${metrics}\n`)
  await app.gmsListen({ host: '127.0.0.1' })
  const good = { authorization: basic('op', 'op-secret-1') }
  const scrape = await fetch(`http://127.0.0.1:${metrics}/metrics`)
  t.equal(scrape.status, 200)
  t.match(await scrape.text(), /gms_gate_requests_total/)
  t.equal((await fetch(`http://127.0.0.1:${metrics}/genesys/1/node`, { headers: good })).status, 404)
  t.equal((await fetch(`http://127.0.0.1:${metrics}/health`)).status, 404)
  t.equal((await fetch(`http://127.0.0.1:${api}/metrics`, { headers: good })).status, 404)
  t.equal((await fetch(`http://127.0.0.1:${api}/genesys/1/node`, { headers: good })).status, 200)
})

t.test('closing the app closes every listening port', async t => {
  const [api, other] = await twoPorts()
  const { app } = await appOnText(t, `[server]\nport = ${api}\nports = ${other}\n`)
  await app.gmsListen({ host: '127.0.0.1' })
  t.equal((await fetch(`http://127.0.0.1:${other}/health`)).status, 200)
  await app.close()
  await t.rejects(fetch(`http://127.0.0.1:${other}/health`))
})

/** Send raw bytes (what fetch will not send: absolute-form targets, fragments, broken headers); resolves with the whole reply. */
async function rawReply (port: number, request: string): Promise<string> {
  const socket = connect(port, '127.0.0.1')
  socket.setEncoding('latin1')
  socket.write(request)
  let reply = ''
  for await (const chunk of socket) reply += chunk as string
  return reply
}

async function rawStatus (port: number, target: string): Promise<number> {
  const reply = await rawReply(port, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(reply)?.[1])
}

t.test('absolute-form targets and fragments meet the same rules as the path they route to', async t => {
  const [api, admin] = await twoPorts()
  const metrics = await freePort()
  const { app } = await appOnText(t, `[server]\nport = ${api}\nports = ${admin}\nmetrics_port = ${metrics}\n[port_restrictions]\n/genesys/1/admin/* = ${admin}\n/genesys/1/node = ${admin}\n`)
  await app.gmsListen({ host: '127.0.0.1' })
  for (const target of ['http://x/genesys/1/admin/node/status', 'HTTPS://x/genesys/1/admin/node/status', '/genesys/1/node#a', 'http://x/genesys/1/node?q', '/metrics#x', 'http://x/metrics']) {
    t.equal(await rawStatus(api, target), 404, `${target} on the refused port`)
  }
  t.equal(await rawStatus(admin, 'http://x/genesys/1/admin/node/status'), 200, 'and served on its own port')
  t.equal(await rawStatus(admin, '/genesys/1/node#a'), 200)
  t.equal(await rawStatus(metrics, 'http://x/metrics'), 200)
  t.equal(await rawStatus(metrics, 'http://x/genesys/1/node'), 404)
})

t.test('rules are checked against the ports open: --port, and a ports edit that waits for a restart', async t => {
  const [filePort, opened] = await twoPorts()
  const later = await freePort()
  const head = `[server]\nport = ${filePort}\n`
  const h = await appOnFile(t, `${head}[port_restrictions]\n/genesys/1/service/* = ${filePort}\n`)
  t.notOk(h.logs.lines.some(l => l.level === 40 && String(l.msg).includes('[port_restrictions]')), 'nothing to say about the file alone')
  await h.app.gmsListen({ host: '127.0.0.1', port: opened })
  t.ok(h.logs.lines.some(l => l.level === 40 && l.msg === `with the ports open now: [port_restrictions] /genesys/1/service/* allows none of the ports gms-gate listens on (${opened}): every request to it answers 404`))
  const reloaded = h.nextReload()
  await writeFile(h.file, `${head}ports = ${later}\n[port_restrictions]\n/genesys/1/service/* = ${opened}, ${later}\n`)
  await reloaded
  t.ok(h.logs.lines.some(l => l.level === 40 && l.msg === `with the ports open now: [port_restrictions] /genesys/1/service/* names ports gms-gate does not listen on: ${later} (add them to ports in [server] to serve them)`))
})

t.test('a malformed request gets the same answer on every port', async t => {
  const [api, other] = await twoPorts()
  const { app } = await appOnText(t, `[server]\nport = ${api}\nports = ${other}\n`)
  await app.gmsListen({ host: '127.0.0.1' })
  const raw = (port: number): Promise<string> => rawReply(port, 'GET /health HTTP/1.1\r\nHost: x\r\nbroken header line\r\n\r\n')
  const main = await raw(api)
  t.match(main, /^HTTP\/1\.1 400/)
  t.equal(await raw(other), main)
})

t.test('characters a regular expression would read are plain in patterns', async t => {
  const { rules } = rulesOf('[server]\nports = 8080\n[port_restrictions]\n/genesys/1/a.b+(c)* = 8080\n/genesys/1/x|y/* = 8080\n')
  t.equal(portRuleFor(rules!, '/genesys/1/a.b+(c)/d')?.pattern, '/genesys/1/a.b+(c)*')
  t.equal(portRuleFor(rules!, '/genesys/1/axbb(c)/d'), undefined)
  t.equal(portRuleFor(rules!, '/genesys/1/x|y'), rules!.rules[1])
  t.equal(portRuleFor(rules!, '/genesys/1/x'), undefined)
})
