/**
 * http/preset-headers.ts: the headers installed at once read, change and go on the wire exactly as
 * the same headers set one by one with setHeader, and one response's changes never reach another's;
 * so do the fixed headers an answer sets at once over them (fixedHeaders: the JWKS's).
 */
import assert from 'node:assert/strict';
import { createServer, IncomingMessage, ServerResponse, type Server } from 'node:http';
import { connect, Socket, type AddressInfo } from 'node:net';
import { fixedHeaders, presetHeaders } from '../../src/http/preset-headers.js';

const FIXED: [string, string][] = [
  ['Content-Security-Policy', "default-src 'none'; img-src 'self' data:"],
  ['X-Frame-Options', 'DENY'],
  ['Strict-Transport-Security', 'max-age=31536000; includeSubDomains'],
  ['Cache-Control', 'no-store'],
];

/** The raw head a server sends when `handle` answers, as bytes on the socket (the date removed). */
async function rawHead(handle: (res: ServerResponse) => void): Promise<string> {
  const server: Server = createServer((_req, res) => {
    res.sendDate = false;
    handle(res);
    res.end('{}');
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  try {
    const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
    socket.end('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    let text = '';
    for await (const chunk of socket) text += String(chunk);
    return text.slice(0, text.indexOf('\r\n\r\n'));
  } finally {
    await new Promise((done) => server.close(done));
  }
}

const response = () => new ServerResponse(new IncomingMessage(new Socket()));

describe('preset headers', () => {
  const preset = presetHeaders('X-Request-Id', FIXED);

  it('is taken on this Node (not the one-by-one fallback)', () => {
    assert.equal(preset.name, 'preset');
  });

  it('writes the same head as setHeader, one header at a time, with the answer’s own headers after', async () => {
    const answer = (res: ServerResponse) => {
      res.setHeader('Content-Type', 'application/json; charset=utf-8');
      res.setHeader('X-Frame-Options', 'SAMEORIGIN'); // a route overriding one
      res.removeHeader('Strict-Transport-Security');
    };
    const expected = await rawHead((res) => {
      res.setHeader('X-Request-Id', 'id-1');
      for (const [name, value] of FIXED) res.setHeader(name, value);
      answer(res);
    });
    const actual = await rawHead((res) => {
      preset(res, 'id-1');
      answer(res);
    });
    assert.equal(actual, expected);
    assert.match(actual, /\r\nContent-Security-Policy: default-src 'none'; img-src 'self' data:\r\n/);
  });

  it('reads back as setHeader’s, and one response’s changes stay its own', () => {
    const one = response();
    const two = response();
    preset(one, 'a');
    preset(two, 'b');
    one.setHeader('Cache-Control', 'public, max-age=60');
    one.removeHeader('X-Frame-Options');
    assert.equal(two.getHeader('cache-control'), 'no-store');
    assert.equal(two.getHeader('X-Frame-Options'), 'DENY');
    assert.equal(two.getHeader('x-request-id'), 'b');
    assert.deepEqual(two.getHeaderNames(), ['x-request-id', 'content-security-policy', 'x-frame-options', 'strict-transport-security', 'cache-control']);
    assert.equal(two.hasHeader('constructor'), false);
    assert.throws(() => two.appendHeader('X-Frame-Options', 'SAMEORIGIN'), TypeError);
    assert.equal(response().getHeader('x-frame-options'), undefined);
  });

  it('sets them one by one on a response that already has headers', () => {
    const res = response();
    res.setHeader('Vary', 'Origin');
    preset(res, 'c');
    assert.deepEqual(res.getHeaderNames(), ['vary', 'x-request-id', 'content-security-policy', 'x-frame-options', 'strict-transport-security', 'cache-control']);
  });

  it('refuses at start a value setHeader refuses', () => {
    assert.throws(() => presetHeaders('X-Request-Id', [['X-Bad', 'a\r\nb']]));
  });
});

describe('fixed headers', () => {
  const preset = presetHeaders('X-Request-Id', FIXED);
  const ANSWER: [string, string][] = [
    ['Cache-Control', 'public, max-age=43200'], // replaces the preset's, where it stands
    ['ETag', '"abc"'],
    ['Access-Control-Allow-Origin', '*'],
    ['X-Frame-Options', 'SAMEORIGIN'],
    ['Content-Type', 'application/jwk-set+json; charset=utf-8'],
  ];
  const answer = fixedHeaders(ANSWER);

  it('is taken on this Node (not the one-by-one fallback)', () => {
    assert.equal(answer.name, 'direct');
  });

  it('writes the same head as setHeader, one header at a time, over the preset headers', async () => {
    const expected = await rawHead((res) => {
      preset(res, 'id-2');
      for (const [name, value] of ANSWER) res.setHeader(name, value);
    });
    const actual = await rawHead((res) => {
      preset(res, 'id-2');
      answer(res);
    });
    assert.equal(actual, expected);
    assert.match(actual, /\r\nCache-Control: public, max-age=43200\r\nETag: "abc"\r\n/);
  });

  it('reads back as setHeader’s on a response with headers of its own or none, and leaves the next response alone', () => {
    const one = response();
    one.setHeader('Vary', 'Origin');
    answer(one);
    assert.deepEqual(one.getHeaderNames(), ['vary', 'cache-control', 'etag', 'access-control-allow-origin', 'x-frame-options', 'content-type']);
    one.setHeader('ETag', '"changed"');
    one.appendHeader('Cache-Control', 'no-transform');
    const two = response();
    answer(two);
    assert.equal(two.getHeader('etag'), '"abc"');
    assert.equal(two.getHeader('cache-control'), 'public, max-age=43200');
    assert.equal(two.getHeader('Content-Type'), 'application/jwk-set+json; charset=utf-8');
    const three = response();
    preset(three, 'id-3');
    answer(three);
    assert.equal(three.getHeader('cache-control'), 'public, max-age=43200');
    assert.equal(three.getHeader('content-security-policy'), FIXED[0]![1]);
    assert.equal(response().getHeader('etag'), undefined);
  });

  it('does nothing once the head is sent, as ctx.set', () => {
    const res = response();
    res.writeHead(204);
    assert.doesNotThrow(() => answer(res));
    assert.equal(res.getHeader('etag'), undefined);
  });

  it('refuses at start a value setHeader refuses', () => {
    assert.throws(() => fixedHeaders([['X-Bad', 'a\r\nb']]));
  });
});
