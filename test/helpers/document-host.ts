/**
 * A loopback host serving one Client ID Metadata Document at `/agent.json` (cached a second at most),
 * for a describe: registers its before and after hooks. Its client id is `${base}/agent.json`, its
 * redirect URI `${base}/callback`; the server reaching it needs OUTBOUND_ALLOW_PRIVATE_NETWORKS.
 * `change` has it serve the document with other members from then on (a document narrowed, say).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface DocumentHost {
  /** `http://127.0.0.1:<port>`, once the describe's before hook ran. */
  readonly base: string;
  /** Serves the document with `members` on top of its own from now on (undefined: as it was). */
  change(members: Record<string, unknown> | undefined): void;
}

export function documentHost(scope: string): DocumentHost {
  let documents: http.Server | undefined;
  let base = '';
  let changed: Record<string, unknown> | undefined;
  before(async () => {
    documents = http.createServer((req, res) => {
      if (req.url !== '/agent.json') return res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=1' }).end(JSON.stringify({ client_id: `${base}/agent.json`, client_name: 'Agent', redirect_uris: [`${base}/callback`], grant_types: ['authorization_code', 'refresh_token'], scope, ...changed }));
    });
    await new Promise<void>((resolve) => documents!.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(documents.address() as AddressInfo).port}`;
  });
  after(() => {
    documents?.closeAllConnections();
    documents?.close();
  });
  return {
    get base() {
      return base;
    },
    change(members) {
      changed = members;
    },
  };
}
