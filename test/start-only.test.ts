import t from 'tap'
import { loadOptionsText } from '../plugins/options-watch.js'
import { START_ONLY_OPTIONS, startOnlyChanges } from '../plugins/start-only.js'

const load = (ini: string) => loadOptionsText(ini)
const start = load('[server]\nport = 8080\n')

t.test('an edit of an option a reload applies needs no restart', async t => {
  t.same(startOnlyChanges(start, start, load('[server]\nport = 8080\nrealm = R\nusername = u\npassword = p\nplaintext_passwords = allow\n')), [])
})

t.test('each start-only option is told apart', async t => {
  const cases: Array<[string, string]> = [
    ['[server]\nport = 8081\n', '[server] host, port, ports, metrics_port'],
    ['[server]\nport = 8080\nports = 8100\n', '[server] host, port, ports, metrics_port'],
    ['[server]\nport = 8080\nmetrics_port = 9100\n', '[server] host, port, ports, metrics_port'],
    ['[server]\nport = 8080\nhost = 0.0.0.0\n', '[server] host, port, ports, metrics_port'],
    ['[server]\nport = 8080\ntrust_proxy = true\n', '[server] trust_proxy'],
    ['[server]\nport = 8080\nthrottle_store = redis\n', '[server] throttle_store, redis_url'],
    ['[notification]\nbackend = redis\nredis_url = redis://127.0.0.1:1/0\n[server]\nport = 8080\n', '[notification] backend, redis_url'],
    ['[storage]\nbackend = redis\n[server]\nport = 8080\n', '[storage] backend, redis_url (for the Service API)']
  ]
  for (const [ini, option] of cases) {
    t.same(startOnlyChanges(start, start, load(ini)).map(o => o.option), [option], ini)
  }
  t.equal(new Set(cases.map(c => c[1])).size, START_ONLY_OPTIONS.length - 1, 'every entry but TLS (tested with real certificates in tls.test.ts) is covered here')
})

t.test('a difference already reported by the previous version is not reported again; going back to the start value is silent', async t => {
  const moved = load('[server]\nport = 8081\n')
  t.same(startOnlyChanges(start, moved, load('[server]\nport = 8081\nrealm = R\n')), [])
  t.same(startOnlyChanges(start, moved, start), [])
})

t.test('a redis_url changed while its backend is memory needs no restart', async t => {
  const memory = load('[server]\nport = 8080\n[storage]\nbackend = memory\n[notification]\nbackend = memory\n')
  const edited = load('[server]\nport = 8080\nredis_url = redis://127.0.0.1:2/0\n[storage]\nbackend = memory\nredis_url = redis://127.0.0.1:2/0\n[notification]\nbackend = memory\nredis_url = redis://127.0.0.1:2/0\n')
  t.same(startOnlyChanges(memory, memory, edited), [])
})
