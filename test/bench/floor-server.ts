/**
 * The floor for answers Latchkey serves from memory (discovery, the JWKS): a bare node:http server
 * answering the same paths with the same status, headers and body, captured from a running Latchkey
 * (captureAnswers), and nothing else: no Koa, no request id, no log line, no metrics, no rate limit.
 * What Node itself adds (Date, Connection, Keep-Alive) it adds to both. Latchkey's cost above this
 * server's, on the same core or under callgrind, is what its stack spends beyond writing the bytes.
 *
 * Run by callgrind-ab.ts as the build `floor`, in its own process: PORT, and
 * FLOOR_ANSWERS (a JSON file of captureAnswers's). An If-None-Match equal to an answer's ETag gets
 * the 304 with the same headers but the type and length, as Latchkey answers it.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

/** One captured answer: its status, its headers in order (name, value) and its body. */
export interface CapturedAnswer {
  readonly status: number;
  readonly headers: readonly (readonly [string, string])[];
  readonly body: string;
}

/** Headers Node's server writes itself on every answer: not captured. */
const NODE_OWN = new Set(['date', 'connection', 'keep-alive', 'transfer-encoding']);

/** The answers of `url` at `paths` (GET, as the bench's scenarios ask: accept application/json). */
export async function captureAnswers(url: string, paths: readonly string[]): Promise<Record<string, CapturedAnswer>> {
  const answers: Record<string, CapturedAnswer> = {};
  for (const path of paths) {
    const response = await fetch(`${url}${path}`, { headers: { accept: 'application/json' } });
    const headers: [string, string][] = [];
    response.headers.forEach((value, name) => {
      if (!NODE_OWN.has(name)) headers.push([name, value]);
    });
    answers[path] = { status: response.status, headers, body: await response.text() };
  }
  return answers;
}

if (process.env.FLOOR_ANSWERS) {
  const answers = JSON.parse(readFileSync(process.env.FLOOR_ANSWERS, 'utf8')) as Record<string, CapturedAnswer>;
  // Per path: the flat header lists writeHead takes, made once.
  const table = new Map(
    Object.entries(answers).map(([path, answer]) => {
      const etag = answer.headers.find(([name]) => name === 'etag')?.[1];
      const notModified = answer.headers.filter(([name]) => name !== 'content-type' && name !== 'content-length').flat();
      return [path, { status: answer.status, headers: answer.headers.flat(), body: answer.body, etag, notModified }];
    }),
  );
  const server = createServer((req, res) => {
    const answer = table.get(req.url ?? '');
    if (!answer) {
      res.writeHead(404, ['content-length', '0']).end();
      return;
    }
    if (answer.etag && req.headers['if-none-match'] === answer.etag) {
      res.writeHead(304, answer.notModified).end();
      return;
    }
    res.writeHead(answer.status, answer.headers).end(answer.body);
  });
  server.keepAliveTimeout = 5000;
  server.listen(Number(process.env.PORT), '127.0.0.1');
}
