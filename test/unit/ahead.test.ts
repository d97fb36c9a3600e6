/**
 * http/ahead.ts: which requests the request listener answers before Koa, and that everything else
 * reaches Koa untouched (what the app then gives them: test/e2e/ahead-answers.test.ts).
 */
import assert from 'node:assert/strict';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { aheadOf, type AheadAnswers } from '../../src/http/ahead.js';

interface Sent {
  readonly status: number;
  readonly by: string | undefined;
}

function send(port: number, path: string, method = 'GET'): Promise<Sent> {
  return new Promise((done, fail) => {
    const req = request({ host: '127.0.0.1', port, path, method }, (res) => {
      res.resume();
      res.on('end', () => done({ status: res.statusCode!, by: res.headers['x-by'] as string | undefined }));
    });
    req.on('error', fail);
    req.end();
  });
}

describe('unit: answers ahead of the app (http/ahead.ts)', () => {
  let server: Server;
  let port: number;
  let ready = true;
  let admitted = true;
  const admissions: [string, string][] = [];
  const ended: [string, string, number][] = [];

  before(async () => {
    const answers: AheadAnswers = {
      paths: ['/kept', '/.well-known/kept'],
      route: 'kept-route',
      find: (path) =>
        ready
          ? {
              write: (_req: IncomingMessage, res: ServerResponse) => {
                res.setHeader('x-path', path);
                res.writeHead(200).end('kept');
                return 200;
              },
            }
          : undefined,
    };
    const app = (_req: IncomingMessage, res: ServerResponse) => {
      res.setHeader('x-by', 'app');
      res.writeHead(404).end();
    };
    const listener = aheadOf(
      app,
      [answers],
      {
        begin: (_req, res) => {
          res.setHeader('x-by', 'ahead');
          return 'id-1';
        },
        end: (req, path, requestId, status) => void ended.push([`${req.method} ${path}`, requestId, status]),
        ip: () => '192.0.2.1',
      },
      (route, ip) => {
        admissions.push([route, ip]);
        return admitted;
      },
    );
    server = createServer(listener);
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((done) => server.close(() => done())));

  it('answers GET and HEAD of a listed path (with a query or none), counted and logged, without the app', async () => {
    assert.deepEqual(await send(port, '/kept'), { status: 200, by: 'ahead' });
    assert.deepEqual(await send(port, '/.well-known/kept?x=1'), { status: 200, by: 'ahead' });
    assert.deepEqual(await send(port, '/kept', 'HEAD'), { status: 200, by: 'ahead' });
    assert.deepEqual(ended, [['GET /kept', 'id-1', 200], ['GET /.well-known/kept', 'id-1', 200], ['HEAD /kept', 'id-1', 200]]);
    assert.deepEqual(admissions, [['kept-route', '192.0.2.1'], ['kept-route', '192.0.2.1'], ['kept-route', '192.0.2.1']]);
  });

  it('leaves to the app: other methods, other spellings and forms of the target, other paths', async () => {
    ended.length = 0;
    for (const [path, method] of [
      ['/kept', 'POST'],
      ['/kept', 'OPTIONS'],
      ['/kept/', 'GET'],
      ['/KEPT', 'GET'],
      ['/kept#x', 'GET'],
      ['/kept%2f', 'GET'],
      ['//kept', 'GET'],
      ['/other', 'GET'],
    ] as const) {
      assert.deepEqual(await send(port, path, method), { status: 404, by: 'app' }, `${method} ${path}`);
    }
    assert.deepEqual(ended, []);
  });

  it('leaves to the app an answer not kept yet, and a request over its limit (not answered, the app counts it)', async () => {
    ready = false;
    admissions.length = 0;
    assert.deepEqual(await send(port, '/kept'), { status: 404, by: 'app' });
    assert.deepEqual(admissions, [], 'not counted: the app counts it');
    ready = true;
    admitted = false;
    assert.deepEqual(await send(port, '/kept'), { status: 404, by: 'app' });
    admitted = true;
  });
});
