/**
 * The conformance suite's view of Latchkey: a running OP reached over HTTP only. The fixture
 * starts it (real redis-server, Latchkey in process), configures clients the way an operator does
 * (static CLIENTS metadata), creates people as the CLI does (in process: test/helpers/operator.ts),
 * and from then on the tests know nothing but the issuer URL: discovery tells them every endpoint.
 *
 * An operator may provision the signing key ring (keys/keyring.json, imported at first start, see
 * keys/README.md). The JWT attack suite does, so that it can sign tokens "as the OP" with any
 * claims it likes (expired, wrong audience, wrong type) and prove that each is refused.
 */
import assert from 'node:assert/strict';
import { createRemoteJWKSet, type JWK } from 'jose';
import * as oidc from 'openid-client';
import { Agent, type Page } from '../helpers/agent.js';
import { addUser, grantApi as grantOnServer } from '../helpers/operator.js';
import { startServer, startServerProcess, type TestServer } from '../helpers/server.js';
import { isConsent, isLogin, signInSteps } from '../helpers/sign-in.js';

export interface Person {
  readonly username: string;
  readonly password: string;
  readonly name?: string;
  readonly givenName?: string;
  readonly familyName?: string;
  readonly email?: string;
  readonly locale?: string;
}

export const ALICE: Person = {
  username: 'alice',
  password: 'conformance passphrase for alice',
  name: 'Alice Liddell',
  givenName: 'Alice',
  familyName: 'Liddell',
  email: 'alice@example.test',
  locale: 'en-GB',
};
export const BOB: Person = { username: 'bob', password: 'conformance passphrase for bob', name: 'Bob Builder' };

export interface OpOptions {
  /** Static clients (RFC 7591 metadata), as an operator configures them. */
  readonly clients?: readonly Record<string, unknown>[];
  readonly env?: Record<string, string>;
  readonly people?: readonly Person[];
  /** Provision the signing key (keys/keyring.json) before the first start, and keep its private JWK. */
  readonly provisionKey?: boolean;
  /** Run `latchkey serve` as its own process and keep every line it logs (stdout and stderr). */
  readonly ownProcess?: boolean;
}

export interface Op {
  /** The issuer; every other URL comes from its discovery document. */
  readonly issuer: string;
  readonly metadata: oidc.ServerMetadata;
  /** The environment the server was configured with, for CLI runs against the same store. */
  readonly env: Record<string, string>;
  /** The private signing JWK, when the test provisioned it (provisionKey). */
  readonly signingKey: JWK | undefined;
  readonly jwks: ReturnType<typeof createRemoteJWKSet>;
  /** `sub` of each person. */
  readonly subs: Record<string, string>;
  /** The server, when it runs in process (not ownProcess): for what an operator prepares (grantApi). */
  readonly server: TestServer | undefined;
  /** What the server logged, when it runs in its own process (ownProcess). */
  readonly logs: string[];
  stop(): Promise<void>;
}

/** The OP as the conformance suite starts it: startServer (or startServerProcess) with a redis-server of its own, then its people. */
export async function startOp(options: OpOptions = {}): Promise<Op> {
  const settings = {
    ownRedis: true,
    clients: options.clients ?? [],
    provisionKey: options.provisionKey,
    env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', ...options.env },
  };
  const server = options.ownProcess ? await startServerProcess(settings) : await startServer(settings);
  try {
    const subs: Record<string, string> = {};
    for (const person of options.people ?? []) subs[person.username] = await addPerson(server.env, person);
    const response = await fetch(new URL('/.well-known/openid-configuration', server.issuer));
    assert.equal(response.status, 200);
    const metadata = (await response.json()) as oidc.ServerMetadata;
    return {
      issuer: server.issuer,
      metadata,
      env: server.env,
      signingKey: server.signingKey,
      jwks: createRemoteJWKSet(new URL(metadata.jwks_uri!)),
      subs,
      server: 'provider' in server ? server : undefined,
      get logs() {
        return 'logs' in server ? server.logs : [];
      },
      stop: () => server.stop(),
    };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

/** A person, as `latchkey users add` makes them (test/helpers/operator.ts); returns the new person's sub. */
export async function addPerson(env: Record<string, string>, person: Person): Promise<string> {
  const claims = {
    ...(person.name ? { name: person.name } : {}),
    ...(person.givenName ? { given_name: person.givenName } : {}),
    ...(person.familyName ? { family_name: person.familyName } : {}),
    ...(person.email ? { email: person.email, email_verified: true } : {}),
    ...(person.locale ? { locale: person.locale } : {}),
  };
  return (await addUser(env, person.username, person.password, claims)).sub;
}

/** An operator's grant, as `latchkey apis grant` gives it (test/helpers/operator.ts), on an OP started in process. */
export async function grantApi(op: Op, clientId: string, api: string, scopes: readonly string[]): Promise<void> {
  if (!op.server) throw new Error('grantApi needs an OP started in process (not ownProcess)');
  await grantOnServer(op.server, clientId, api, { scopes });
}

/** A confidential web client's static metadata. */
export function webClient(id: string, secret: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    client_id: id,
    client_secret: secret,
    client_name: `Conformance ${id}`,
    redirect_uris: [`https://${id}.example.test/callback`],
    post_logout_redirect_uris: [`https://${id}.example.test/signed-out`],
    grant_types: ['authorization_code', 'refresh_token'],
    ...extra,
  };
}

export interface Flow {
  /** Where the front channel ended: the client's redirect URI (with code or error), or a page of ours. */
  readonly page: Page;
  readonly verifier: string;
  readonly state: string;
  readonly nonce: string;
  readonly redirectUri: string;
}

/**
 * A relying party as the conformance suite's test client plays it: openid-client for everything
 * a client library does, and an Agent (cookies, redirects, our HTML forms) as the person.
 */
export class RelyingParty {
  private constructor(
    readonly op: Op,
    readonly clientId: string,
    readonly config: oidc.Configuration,
    readonly redirectUri: string,
  ) {}

  static async create(
    op: Op,
    clientId: string,
    auth: { secret?: string; method?: oidc.ClientAuth } = {},
    redirectUri = `https://${clientId}.example.test/callback`,
    metadata: Partial<oidc.ClientMetadata> = {},
  ): Promise<RelyingParty> {
    const method = auth.method ?? (auth.secret ? oidc.ClientSecretBasic(auth.secret) : oidc.None());
    const config = await oidc.discovery(new URL(op.issuer), clientId, { client_secret: auth.secret, ...metadata }, method, {
      execute: [oidc.allowInsecureRequests],
    });
    return new RelyingParty(op, clientId, config, redirectUri);
  }

  /** An authorization request (PKCE S256, state and nonce unless overridden), followed to our page or back to the client. */
  async authorize(agent: Agent, params: Record<string, string | undefined> = {}): Promise<Flow> {
    const verifier = oidc.randomPKCECodeVerifier();
    const state = params.state ?? oidc.randomState();
    const nonce = params.nonce ?? oidc.randomNonce();
    const redirectUri = params.redirect_uri ?? this.redirectUri;
    const all: Record<string, string | undefined> = {
      redirect_uri: redirectUri,
      scope: 'openid',
      state,
      nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      ...params,
    };
    const defined = Object.fromEntries(Object.entries(all).filter((entry): entry is [string, string] => entry[1] !== undefined));
    const url = oidc.buildAuthorizationUrl(this.config, defined);
    const page = await agent.follow(url.href, {}, redirectUri);
    return { page, verifier, state, nonce, redirectUri };
  }

  /** The whole front channel: authorize, sign in if asked, allow if asked; ends at the redirect URI. */
  async signIn(agent: Agent, person: Person, params: Record<string, string | undefined> = {}, extra: Record<string, string> = {}): Promise<Flow> {
    const flow = await this.authorize(agent, params);
    const page = await signInSteps(agent, flow.page, { username: person.username, password: person.password, fields: extra, stopAt: flow.redirectUri });
    assert.ok(page.url.startsWith(flow.redirectUri), `expected a redirect to ${flow.redirectUri}, got ${page.status} ${page.url}`);
    return { ...flow, page };
  }

  /** The code exchange with every check openid-client makes (state, iss, nonce, ID token). */
  redeem(flow: Flow, options: { nonce?: string | typeof oidc.skipStateCheck } = {}) {
    return oidc.authorizationCodeGrant(this.config, new URL(flow.page.url), {
      pkceCodeVerifier: flow.verifier,
      expectedState: flow.state,
      expectedNonce: typeof options.nonce === 'string' ? options.nonce : flow.nonce,
      idTokenExpected: true,
    });
  }
}


/** The query parameters the front channel brought back to the client. */
/** An HTTP answer with its JSON body read (an empty body as {}), for checks of status, headers and members. */
export interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Record<string, unknown>;
}

export async function answerOf(response: Response): Promise<Answer> {
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

export const callbackParams = (flow: Flow) => new URL(flow.page.url).searchParams;

export { Agent, isConsent, isLogin };
