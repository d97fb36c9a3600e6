/**
 * What an operator's `latchkey` command prepares (a person, an API grant, an initial access token),
 * done in this process through the classes the command's action uses (src/cli-actions.ts), for
 * tests that need the state and are not about the CLI: each CLI run loads the whole app again, about
 * 1.5 s of CPU. Tests whose assertion is the CLI's output, exit code or effect run it (process.ts).
 */
import { Accounts, type Account, type Claims } from '../../src/accounts/accounts.js';
import type { ClientGrant } from '../../src/apis/apis.js';
import { loadConfig } from '../../src/config.js';
import type { Running } from '../../src/main.js';
import { grantableClient } from '../../src/registration/admin-apis.js';
import { openStore, usesRedis } from '../../src/store/index.js';

/**
 * `latchkey users add`: the person made on the store `env` names, as a CLI run with that env makes
 * them (Redis only: a second opener of an embedded store file would not be seen by its server).
 */
export async function addUser(env: Record<string, string>, username: string, password: string, claims: Claims = {}): Promise<Account> {
  const config = loadConfig(env);
  if (!usesRedis(config)) throw new Error('addUser needs a REDIS_URL: on the embedded store, use the in-process server\'s accounts');
  const kv = openStore(config);
  try {
    return await new Accounts(kv, config.accounts.argon2).create(username, password, claims);
  } finally {
    await kv.close();
  }
}

/** `latchkey apis grant`: refused, as the command refuses it, for a client that is unknown or public. */
export async function grantApi(server: Running, clientId: string, api: string, grant: ClientGrant): Promise<ClientGrant> {
  const problem = await grantableClient(server.provider, clientId);
  if (problem) throw new Error(problem);
  return server.apis.grant(clientId, api, grant);
}

/** `latchkey registration token create --expires-in <expiresIn>`: the token's value. */
export function initialAccessToken(server: Running, expiresIn = 600): Promise<string> {
  return new server.provider.InitialAccessToken({ expiresIn }).save();
}
