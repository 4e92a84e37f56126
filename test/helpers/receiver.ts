/** A real HTTP server that records the callbacks it gets; each path answers as the test says. */
import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'

export interface ReceivedCall {
  readonly path: string
  readonly headers: IncomingMessage['headers']
  readonly body: string
}

/** How a path answers: a status code, or 'hang' (never answers). */
export type Answer = number | 'hang'

export interface Receiver {
  /** `http://127.0.0.1:<port>` */
  readonly base: string
  readonly calls: ReceivedCall[]
  /** Set how `path` answers (default 200); a list is used in order, its last entry repeating. */
  answer (path: string, ...answers: Answer[]): void
  /** Resolves with the `n`-th call (1-based) to `path`, counting calls already received. */
  call (path: string, n?: number): Promise<ReceivedCall>
  callsTo (path: string): ReceivedCall[]
}

interface Teardown { teardown (fn: () => unknown): void }

export async function startReceiver (t: Teardown): Promise<Receiver> {
  const answers = new Map<string, Answer[]>()
  const calls: ReceivedCall[] = []
  const waiters: Array<{ path: string, n: number, resolve: (c: ReceivedCall) => void }> = []
  const hanging = new Set<ServerResponse>()
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const path = req.url ?? '/'
      const call = { path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') }
      calls.push(call)
      const list = answers.get(path) ?? [200]
      const answer = list.length > 1 ? list.shift()! : list[0]!
      if (answer === 'hang') hanging.add(res)
      else res.writeHead(answer).end()
      const count = calls.filter(c => c.path === path).length
      for (const w of waiters.filter(w => w.path === path && w.n === count)) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve(call)
      }
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    for (const res of hanging) res.destroy()
    server.closeAllConnections()
    server.close()
  })
  const { port } = server.address() as { port: number }
  const callsTo = (path: string): ReceivedCall[] => calls.filter(c => c.path === path)
  return {
    base: `http://127.0.0.1:${port}`,
    calls,
    answer: (path, ...list) => { answers.set(path, list) },
    callsTo,
    call: (path, n = 1) => {
      const seen = callsTo(path)
      if (seen.length >= n) return Promise.resolve(seen[n - 1]!)
      return new Promise(resolve => waiters.push({ path, n, resolve }))
    }
  }
}
