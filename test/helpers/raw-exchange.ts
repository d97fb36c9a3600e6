/** One raw HTTP/1.1 exchange over a socket of its own, for requests a client library would not send. */
import { connect } from 'node:net';

/**
 * What the server writes back to `request` before it closes the connection, or undefined if it
 * still holds it after `heldMs` (then the socket is dropped).
 */
export function answerTo(port: number, request: string, heldMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const held = setTimeout(() => {
      socket.destroy();
      resolve(undefined);
    }, heldMs);
    const done = () => {
      clearTimeout(held);
      resolve(text);
    };
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('error', done);
    socket.on('close', done);
    socket.write(request);
  });
}
