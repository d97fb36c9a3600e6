/**
 * The answers of http/client-errors.ts on a real Node HTTP server, for what an end-to-end test
 * cannot wait for: a body that stops arriving, refused once the server's requestTimeout passes
 * (30 s in `serve`; a fraction of a second here). See docs/security-passes.md, "bad input and blips,
 * ninth pass".
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { clientErrorAnswers } from '../../src/http/client-errors.js';
import { answerTo as rawAnswer } from '../helpers/raw-exchange.js';

describe('unit: client-errors', () => {
  let server: Server;
  let port: number;
  /** Requests whose body the handler read to its end (none of the refused ones). */
  let read: string[];

  before(async () => {
    read = [];
    // A handler that answers once it read the whole body, as every endpoint reading a form or JSON does.
    server = createServer({ requestTimeout: 400, headersTimeout: 300, connectionsCheckingInterval: 50 }, (request: IncomingMessage, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        read.push(`${request.method} ${request.url}`);
        response.end(JSON.stringify({ body }));
      });
    });
    server.on('clientError', clientErrorAnswers([['X-Content-Type-Options', 'nosniff']]));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  after(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });

  /** What the server writes back before it closes the connection, or undefined if it still holds it after 3 s. */
  const answerTo = (request: string) => rawAnswer(port, request, 3_000);

  it('a body that stops arriving is answered 408 once the request timeout passes and the connection closed, not held for as long as the client keeps it (it waited for its own answer, which waited for the body)', async () => {
    const answer = await answerTo('POST /token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=');
    assert.notEqual(answer, undefined, 'the connection is still held 3 s after a request timeout of 0.4 s');
    assert.match(answer!, /^HTTP\/1\.1 408 Request Timeout\r\n/, answer);
    assert.match(answer!, /\r\nX-Content-Type-Options: nosniff\r\n/);
    assert.match(answer!, /"error":"invalid_request","error_description":"the request did not arrive in time"/);
  });

  it('after an earlier request on the connection, whose answer comes first (RFC 9112 §9.3.2)', async () => {
    const answer = await answerTo('POST /first HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\nokPOST /second HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\nhalf');
    assert.notEqual(answer, undefined, 'the connection is still held 3 s after a request timeout of 0.4 s');
    assert.deepEqual([...answer!.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map(([, status]) => status), ['200', '408'], answer);
    assert.match(answer!, /\{"body":"ok"\}/);
    assert.ok(read.includes('POST /first') && !read.includes('POST /second'));
  });
});
