/**
 * What the patches in src/provider/patches/ rely on in oidc-provider (and @koa/router), pinned to
 * the versions they were checked against. An upgrade fails here first, loudly, naming the patch to
 * review; the e2e and conformance suites then show whether its behaviour still holds.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as querystring from 'node:querystring';
import Router from '@koa/router';
import { exportJWK, generateKeyPair } from 'jose';
import Koa from 'koa';
import mount from 'koa-mount';
import { interactionPolicy, Provider } from 'oidc-provider';
import authorizationSteps from 'oidc-provider/lib/actions/authorization/index.js';
import instance from 'oidc-provider/lib/helpers/weak_cache.js';
import KeyStore from 'oidc-provider/lib/helpers/keystore.js';
import requests from 'oidc-provider/lib/helpers/als.js';
import { ROOT } from '../../src/paths.js';
import { CLIENT_AUTH_ROUTES } from '../../src/http/rate-limits.js';
import { matchedRoute } from '../../src/provider/patches/matched-route.js';
import { errorDescriptionsInOrder } from '../../src/provider/patches/error-descriptions.js';
import { cheaperCorsHeaderScan } from '../../src/provider/patches/cors-header-scan.js';
import { adapterFactory, UserCodeTaken } from '../../src/store/adapter.js';
import { uniqueUserCodes } from '../../src/provider/patches/unique-user-codes.js';
import '../../src/provider/patches/sha256-bindings.js';
import '../../src/provider/patches/refused-request-objects.js';
import type { Kv } from '../../src/store/kv.js';

/** The versions every patch was last checked against. Change only after re-checking each patch below. */
const PINNED = { 'oidc-provider': '9.13.3', '@koa/router': '15.7.0' };

const installed = (pkg: string) => (JSON.parse(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
const source = (file: string) => readFileSync(join(ROOT, 'node_modules', 'oidc-provider', 'lib', file), 'utf8');

describe('patches on oidc-provider internals (src/provider/patches/)', () => {
  // Never asked for anything: given only so that oidc-provider does not warn about its dev defaults.
  const adapter = adapterFactory({} as Kv);
  let provider: Provider;
  before(async () => {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const jwks = { keys: [{ ...(await exportJWK(privateKey)), alg: 'ES256', use: 'sig' }] };
    provider = new Provider('http://localhost:3000', { clients: [], adapter, jwks, features: { devInteractions: { enabled: false } } });
  });

  for (const [pkg, version] of Object.entries(PINNED)) {
    it(`are pinned to ${pkg} ${version}`, () => {
      assert.equal(
        installed(pkg),
        version,
        `${pkg} is now ${installed(pkg)}: re-check every patch in src/provider/patches/ against it (this file names what each relies on), then update PINNED`,
      );
    });
  }

  it('previous-secrets.ts: client secret authentication goes through Client#compareClientSecret', () => {
    assert.equal(typeof (provider.Client.prototype as unknown as Record<string, unknown>).compareClientSecret, 'function');
    assert.match(source('shared/client_auth.js'), /ctx\.oidc\.client\.compareClientSecret\(/);
  });

  it('client-secret-digests.ts: client authentication compares in Client#compareClientSecret; RFC 7592 update checks the body\'s client_secret in equalChecks, and read and update answer in the steps it strips; the clear secret is otherwise only a key of symmetric algorithms (none enabled)', async () => {
    assert.match(source('models/client.js'), /compareClientSecret\(actual\) \{\s*return constantEquals\(this\.clientSecret, actual, 1000\);/);
    const registration = source('actions/registration.js');
    assert.match(registration, /async function equalChecks\(ctx, next\) \{[\s\S]*?if \('client_secret' in ctx\.oidc\.body\) \{\s*const clientSecretValid = constantEquals\(\s*typeof ctx\.oidc\.body\.client_secret === 'string' \? ctx\.oidc\.body\.client_secret : '',\s*ctx\.oidc\.client\.clientSecret \|\| '',/);
    assert.match(registration, /async function clientReadResponse\(ctx\) \{[\s\S]*?ctx\.body = ctx\.oidc\.client\.metadata\(\);/);
    assert.match(registration, /async function clientUpdateResponse\(ctx\) \{[\s\S]*?ctx\.body = client\.metadata\(\);/);
    const steps = await import('oidc-provider/lib/actions/registration.js');
    const names = (list: unknown[]) => list.map((step) => (step as { name: string }).name);
    assert.ok(names(steps.put).includes('equalChecks') && names(steps.put).includes('clientUpdateResponse') && names(steps.get).includes('clientReadResponse'));
    // Besides the comparison, the engine reads the secret only as the key of HS* and symmetric encryption algorithms.
    const uses = source('models/client.js').match(/clientSecret\b/g) ?? [];
    assert.equal(uses.length, 5, 'models/client.js reads clientSecret elsewhere: review client-secret-digests.ts');
  });

  it('id-token-hints.ts, revoked-key-hints.ts: both readers of id_token_hint call IdToken.validate', () => {
    assert.equal(typeof (provider.IdToken as unknown as Record<string, unknown>).validate, 'function');
    assert.match(source('actions/authorization/claims.js'), /provider\.IdToken\.validate\(/);
    assert.match(source('actions/end_session.js'), /provider\.IdToken\.validate\(/);
  });

  it('revoked-key-signing.ts: the engine signs with its keys only in IdToken#issue and the JWT format, each picking the key after its last await (the JWT customizer), among keys whose key_ops allow "sign"', () => {
    assert.equal(typeof (provider.IdToken as unknown as { prototype: { issue?: unknown } }).prototype.issue, 'function');
    const callers = execFileSync('grep', ['-rl', 'JWT.sign(', join(ROOT, 'node_modules', 'oidc-provider', 'lib')], { encoding: 'utf8' }).trim().split('\n').map((file) => file.slice(file.indexOf('/lib/') + 5)).sort();
    assert.deepEqual(callers, ['models/formats/jwt.js', 'models/id_token.js']);
    assert.match(source('models/id_token.js'), /async issue\(\{ use, expiresAt = null \} = \{\}\) \{/);
    assert.match(source('models/formats/jwt.js'), /await customizer\(als\.getStore\(\), token, structuredToken\);[\s\S]*?const config = await getResourceServerConfig\(provider, token\);[\s\S]*?signed = await JWT\.sign\(/);
    assert.match(source('models/formats/jwt.js'), /async function getResourceServerConfig[\s\S]*?\[key\] = keystore\.selectForSign\(\{ alg, use: 'sig', kid \}\);/);
    assert.match(source('helpers/keystore.js'), /if \(candidate && Array\.isArray\(jwk\.key_ops\)\) \{\s*candidate = jwk\.key_ops\.includes\(operation\);/);
  });

  it('grant-before-token.ts: the engine destroys an access or refresh token with destroy() and then revokes its grant by revokeByGrantId', () => {
    for (const model of [provider.AccessToken, provider.RefreshToken] as unknown as { revokeByGrantId?: unknown; prototype: { destroy?: unknown } }[]) {
      assert.equal(typeof model.revokeByGrantId, 'function');
      assert.equal(typeof model.prototype.destroy, 'function');
    }
    assert.match(source('actions/revocation.js'), /await token\.destroy\(\);\s*if \(token\.kind === 'RefreshToken' \|\| token\.kind === 'AccessToken'\) \{\s*await revoke\(ctx, token\.grantId\);/);
    assert.match(source('actions/grants/refresh_token.js'), /refreshToken\.destroy\(\),\s*revoke\(ctx, refreshToken\.grantId\),/);
    assert.match(source('helpers/revoke.js'), /provider\.Grant\.adapter\.destroy\(grantId\)/);
  });

  it('issued-as-of-client-read.ts: client authentication reads the client with Client.find; client_credentials, access and refresh tokens, made after it and saved through BaseToken#save, are stamped with iat only when saved, unless they have one', () => {
    assert.match(source('shared/client_auth.js'), /const client = await provider\.Client\.find\(clientId\);/);
    const handler = source('actions/grants/client_credentials.js');
    assert.ok(handler.indexOf('const { client } = ctx.oidc;') < handler.indexOf('new ClientCredentials({') && handler.indexOf('new ClientCredentials({') < handler.indexOf('await token.save();'));
    for (const model of ['client_credentials', 'access_token']) assert.doesNotMatch(source(`models/${model}.js`), /\bsave\(|\biat\b/, model);
    // A refresh token's iiat (its absolute lifetime's start) is taken when it is made, not from the stamp.
    assert.doesNotMatch(source('models/refresh_token.js').replace('this.iiat = this.iat || epochTime();', ''), /\bsave\(|\biat\b/);
    for (const Model of [provider.ClientCredentials, provider.AccessToken, provider.RefreshToken]) assert.equal(Object.hasOwn(Model.prototype, 'save'), false, Model.name);
    // A rotated refresh token is a new one (no iat given): the stamp applies to it too.
    assert.doesNotMatch(source('actions/grants/refresh_token.js').slice(source('actions/grants/refresh_token.js').indexOf('refreshToken = new RefreshToken({')), /^\s*iat:/m);
    assert.match(source('models/formats/opaque.js'), /iat: token\.iat \|\| epochTime\(\),/);
    assert.match(source('models/formats/jwt.js'), /const \{ payload \} = await getOpaqueValueAndPayload\(provider, token\);/);
    assert.ok(Object.getOwnPropertyDescriptor(Provider, 'ctx')?.get, 'Provider.ctx is a getter');
  });

  it('client-auth-required.ts: a request without client authentication, and a Basic header with an empty secret, fail with the descriptions it matches', () => {
    assert.match(source('shared/client_auth.js'), /new InvalidRequest\('no client authentication mechanism provided'\)/);
    assert.match(source('shared/client_auth.js'), /if \(!clientSecret\) \{\s*throw new InvalidRequest\('client_secret must be provided in the Authorization header'\);/);
  });

  it('pkce-required.ts: pkce.required is asked only by checkPKCE, for a code request without code_challenge, and a true answer is the InvalidRequest it replaces', () => {
    const constraints = source('actions/authorization/sender_constraints.js');
    assert.match(constraints, /if \(params\.response_type\.includes\('code'\)\) \{\s*if \(!params\.code_challenge\) \{\s*if \(boolean\(pkce\.required\(ctx, ctx\.oidc\.client\), 'pkce\.required'\)\) \{\s*throw new InvalidRequest\('Authorization Server policy requires PKCE to be used for this request'\);/);
    const callers = execFileSync('grep', ['-rl', 'pkce.required', join(ROOT, 'node_modules', 'oidc-provider', 'lib')], { encoding: 'utf8' }).trim().split('\n').map((file) => file.split('/lib/')[1]).sort();
    assert.deepEqual(callers, ['actions/authorization/sender_constraints.js']);
  });

  it('sha256-bindings.ts: the engine checks code_challenge by the ABNF of either method (43 to 128 unreserved characters) in checkPKCE, at /auth and /request, and dpop_jkt only against a proof at /request; the step runs right after checkPKCE there', () => {
    const format = source('helpers/pkce_format.js');
    for (const rule of ['const check = /[^\\w.\\-~]/;', 'input.length < 43', 'input.length > 128']) assert.ok(format.includes(rule), rule);
    const constraints = source('actions/authorization/sender_constraints.js');
    assert.match(constraints, /if \(params\.code_challenge_method !== 'S256'\)/);
    assert.match(constraints, /if \(params\.dpop_jkt && params\.dpop_jkt !== dPoP\.thumbprint\)/);
    for (const endpoint of ['authorization', 'pushed_authorization_request']) {
      const names = (authorizationSteps(endpoint) as Array<{ name: string }>).map((step) => step.name);
      assert.equal(names[names.indexOf('checkPKCE') + 1], 'sha256Bindings', endpoint);
    }
  });

  it('pushed-request-uri.ts: a request_uri at any route but authorization is refused with RequestUriNotSupported, the error it rewrites at the PAR route', () => {
    assert.match(source('actions/authorization/request_parameters.js'), /params\.request_uri !== undefined\s*&& \(ctx\.oidc\.route !== 'authorization' \|\| !pushedAuthorizationRequests\.enabled\)\s*\) \{\s*throw new RequestUriNotSupported\(\);/);
  });

  it('other-schemes-unauthenticated.ts: the engine reads the access token from ctx.headers.authorization, refuses another scheme as invalid_request, and answers a request without one as NoAccessTokenProvided', () => {
    const context = source('helpers/oidc_context.js');
    assert.match(context, /header: ctx\.headers\.authorization,/);
    assert.match(context, /throw new InvalidRequest\('authorization header scheme must be `Bearer`'\);/);
    assert.match(context, /if \(!length\) \{\s*throw new NoAccessTokenProvided\(\);/);
  });

  it("userinfo-api-tokens.ts: userinfo finds its access token in the store (a JWT access token is not stored), and every invalid_token there says 'invalid token provided', in the body and the challenge", () => {
    assert.match(source('actions/userinfo.js'), /const validateAccessToken = getValidateAccessToken\(/);
    assert.match(source('shared/access_token.js'), /const accessToken = await ctx\.oidc\.provider\.AccessToken\.find\(value\);\s*ctx\.assert\(accessToken, new InvalidToken\('access token not found'\)\);/);
    assert.match(source('helpers/errors.js'), /class InvalidToken extends OIDCProviderError \{\s*error_description = 'invalid token provided';/);
    assert.match(source('shared/set_www_authenticate_header.js'), /error_description: err\.error_description,/);
  });

  it('refused-request-objects.ts: the engine refuses `request` in its rejectUnsupported step at /auth (after the parameters are assembled, before the client is checked), and its error handler answers with the state and response_mode of ctx.oidc.params, a mode it does not offer falling back to the default', () => {
    assert.match(source('actions/authorization/request_parameters.js'), /export function rejectUnsupported\(ctx, next\) \{[\s\S]*?if \(params\.request !== undefined && !requestObjects\.enabled\) \{\s*throw new RequestNotSupported\(\);/);
    assert.match(source('actions/authorization/index.js'), /use\(assembleAuthorizationParams,[^\n]*\n[\s\S]*use\(rejectUnsupported,[^\n]*\n[\s\S]*use\(checkClient,/);
    assert.match(source('shared/authorization_error_handler.js'), /const \{ params = \(ctx\.method === 'POST' \? oidc\.body : ctx\.query\) \|\| \{\} \} = oidc;/);
    assert.match(source('shared/authorization_error_handler.js'), /let mode = safe\(params\.response_mode\);\s*if \(!instance\(provider\)\.responseModes\.has\(mode\)\) \{\s*mode = resolveResponseMode/);
    assert.match(source('shared/authorization_error_handler.js'), /getOutAndEmit\(ctx, err, safe\(params\.state\)\)/);
    assert.ok((authorizationSteps('authorization') as { name: string }[]).some((step) => step.name === 'deliverAsTheObjectAsks'), 'the step is in place');
  });

  it('openid-redirect-uri.ts: the engine fills in a single registered redirect_uri in its oneRedirectUriClients step (after it loads a pushed request), makes a code from the parameters with save(), keeps only IN_PAYLOAD, read once per model, and stores a pushed request with its parameters', () => {
    assert.match(source('actions/authorization/response_parameters.js'), /export function oneRedirectUriClients\(ctx, next\) \{[\s\S]*?if \(params\.redirect_uri === undefined && client\.redirectUris\.length === 1\) \{/);
    assert.match(source('actions/authorization/index.js'), /use\(loadPushedAuthorizationRequest,[^\n]*\n[\s\S]*use\(oneRedirectUriClients,/);
    assert.match(source('actions/authorization/pushed_authorization_requests.js'), /ctx\.oidc\.entity\('PushedAuthorizationRequest', pushedAuthorizationRequest\)/);
    assert.match(source('actions/authorization/pushed_authorization_requests.js'), /const payload = \{ \.\.\.ctx\.oidc\.params \};/);
    assert.match(source('helpers/process_response_types.js'), /const code = new ctx\.oidc\.provider\.AuthorizationCode\(\{[\s\S]*?redirectUri: ctx\.oidc\.params\.redirect_uri,[\s\S]*?return \{ code: await code\.save\(\) \};/);
    assert.match(source('models/payload.js'), /result = new Set\(Model\.IN_PAYLOAD\);/);
    assert.ok(Object.getOwnPropertyDescriptor(Object.getPrototypeOf(provider.AuthorizationCode), 'IN_PAYLOAD')?.get || Object.getOwnPropertyDescriptor(provider.AuthorizationCode, 'IN_PAYLOAD')?.get, 'IN_PAYLOAD is a static getter');
    assert.equal(typeof (provider.AuthorizationCode.prototype as unknown as Record<string, unknown>).save, 'function');
  });

  it('confidential-redemption.ts: refresh tokens, codes and device codes are made with their client and saved with save(), keep only IN_PAYLOAD (static getters), and are found at the token endpoint after client authentication', () => {
    assert.match(source('helpers/grant_common.js'), /new provider\.RefreshToken\(\{[\s\S]*?client: ctx\.oidc\.client,[\s\S]*?\}\);/);
    assert.match(source('actions/grants/refresh_token.js'), /refreshToken = new RefreshToken\(\{[\s\S]*?\n\s*client,\n[\s\S]*?refreshTokenValue = await refreshToken\.save\(\);/);
    assert.match(source('helpers/process_response_types.js'), /new ctx\.oidc\.provider\.AuthorizationCode\(\{[\s\S]*?client: ctx\.oidc\.client,/);
    assert.match(source('actions/authorization/device.js'), /new ctx\.oidc\.provider\.DeviceCode\(\{\s*client: ctx\.oidc\.client,/);
    assert.match(source('models/base_token.js'), /set client\(client\) \{\s*this\.clientId = client\.clientId;/);
    assert.match(source('models/client.js'), /get clientAuthMethod\(\) \{/);
    assert.match(source('models/payload.js'), /result = new Set\(Model\.IN_PAYLOAD\);/);
    for (const Model of [provider.RefreshToken, provider.AuthorizationCode, provider.DeviceCode]) {
      assert.ok(Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Model), 'IN_PAYLOAD')?.get || Object.getOwnPropertyDescriptor(Model, 'IN_PAYLOAD')?.get, 'IN_PAYLOAD is a static getter');
      assert.equal(typeof (Model.prototype as unknown as Record<string, unknown>).save, 'function');
    }
  });

  it("carried-along-refresh-chain.ts: the code and device code grants name what they redeem before a refresh token is made and saved (grant_common.js); a refresh names the token rotated RotatedRefreshToken, and makes the new one of the engine's own properties, before saving it", () => {
    assert.match(source('actions/grants/authorization_code.js'), /ctx\.oidc\.entity\('AuthorizationCode', code\);[\s\S]*?await issueTokens\(/);
    assert.match(source('actions/grants/device_code.js'), /ctx\.oidc\.entity\('DeviceCode', code\);[\s\S]*?await issueTokens\(/);
    assert.match(source('helpers/grant_common.js'), /ctx\.oidc\.entity\('RefreshToken', rt\);\s*refreshToken = await rt\.save\(\);/);
    const refresh = source('actions/grants/refresh_token.js');
    assert.match(refresh, /ctx\.oidc\.entity\('RotatedRefreshToken', refreshToken\);\s*refreshToken = new RefreshToken\(\{[^}]*\}\);[\s\S]*?refreshTokenValue = await refreshToken\.save\(\);/);
    assert.equal(typeof Object.getOwnPropertyDescriptor(Provider, 'ctx')?.get, 'function', 'Provider.ctx, the request being served');
  });

  it('unauthorized-client.ts: the grant-type refusals it rewrites, and Client#responseTypeAllowed is called only by the response_type check', () => {
    assert.match(source('actions/token.js'), /if \(!ctx\.oidc\.client\.grantTypeAllowed\(ctx\.oidc\.params\.grant_type\)\) \{\s*throw new InvalidRequest\('requested grant type is not allowed for this client'\);/);
    assert.match(source('actions/authorization/client.js'), /throw new InvalidRequest\(`\$\{grantType\} is not allowed for this client`\);/);
    assert.equal(typeof (provider.Client.prototype as unknown as Record<string, unknown>).responseTypeAllowed, 'function');
    const checks = source('actions/authorization/response_parameters.js');
    assert.match(checks, /if \(!supported\.includes\(params\.response_type\)\) \{\s*throw new UnsupportedResponseType\(\);\s*\}\s*if \(!ctx\.oidc\.client\.responseTypeAllowed\(params\.response_type\)\)/);
    const callers = execFileSync('grep', ['-rl', 'responseTypeAllowed(', join(ROOT, 'node_modules', 'oidc-provider', 'lib')], { encoding: 'utf8' }).trim().split('\n');
    assert.deepEqual(callers.map((file) => file.split('/lib/')[1]).sort(), ['actions/authorization/response_parameters.js', 'models/client.js']);
  });

  it('api-scopes-in-metadata.ts: the schema runs extraClientMetadata.validator before its checks, and scopes() refuses anything not static', () => {
    const schema = source('helpers/client_schema.js');
    assert.match(schema, /if \(processCustomMetadata\) \{\s*this\.#assign\(metadata\);\s*this\.processCustomMetadata\(ctx\);\s*this\.#initialize\(this\);/);
    assert.match(schema, /scopes\(\) \{\s*if \(this\.scope\) \{\s*const parsed = new Set\(this\.scope\.split\(' '\)\);\s*parsed\.forEach\(\(scope\) => \{\s*if \(!scopes\.has\(scope\)\)/);
    assert.equal(typeof (provider.Client as unknown as { Schema: { prototype: Record<string, unknown> } }).Schema.prototype.scopes, 'function');
    // Loading a client passes no context (policy: already checked); registration passes the request's.
    assert.match(source('models/client.js'), /static async find\(id\)[\s\S]*client = await addClient\(provider, properties\);/);
    assert.match(source('actions/registration.js'), /addClient\(provider, properties, \{ store: true, ctx \}\)/);
    assert.match(source('models/client.js'), /static async validate\(metadata\) \{\s*const client = new Client\(metadata\);/);
  });

  it('announced-client-limit.ts: Client.find and Provider.ctx exist, and the routes it watches are oidc-provider route names', () => {
    assert.equal(typeof (provider.Client as unknown as Record<string, unknown>).find, 'function');
    assert.ok(Object.getOwnPropertyDescriptor(Provider, 'ctx')?.get, 'Provider.ctx is a getter');
    for (const route of CLIENT_AUTH_ROUTES) assert.match(source('helpers/initialize_app.js'), new RegExp(`post\\('${route}', routes\\.${route},`), route);
  });

  it('offline-access.ts: the consent prompt has the consent_prompt check, and the code flow drops offline_access without prompt=consent', () => {
    assert.ok(interactionPolicy.base().get('consent')?.checks.get('consent_prompt'));
    assert.match(source('actions/authorization/scopes.js'), /scopes\.splice\(scopes\.indexOf\('offline_access'\), 1\)/);
    // PAR: the steps are built once per endpoint and hold checkScope; what is stored is the params as checked.
    const pushed = authorizationSteps('pushed_authorization_request') as Array<{ name: string }>;
    assert.equal(authorizationSteps('pushed_authorization_request'), pushed);
    assert.ok(pushed.some((step) => step.name === 'checkScope'));
    assert.match(source('actions/authorization/pushed_authorization_requests.js'), /const payload = \{ \.\.\.ctx\.oidc\.params \};/);
  });

  it('scope-required.ts: the three endpoints that take a scope check it in checkScope, and a request without one ends in AccessDenied after the interactions', () => {
    for (const endpoint of ['authorization', 'pushed_authorization_request', 'device_authorization']) {
      assert.ok((authorizationSteps(endpoint) as Array<{ name: string }>).some((step) => step.name === 'checkScope'), endpoint);
    }
    assert.match(source('actions/authorization/interactions.js'), /but no scope was granted/);
    // The error handler checks the redirect URI itself before it redirects an error raised ahead of checkRedirectUri.
    assert.match(source('shared/authorization_error_handler.js'), /method: 'redirectUriAllowed',\s*check: 'redirectUriCheckPerformed',/);
  });

  it('step-up.ts: the login prompt takes an extra Check, reads the session acr as ctx.oidc.acr, and the login result carries acr and amr to the session', () => {
    const login = interactionPolicy.base().get('login');
    assert.ok(login && typeof login.checks.add === 'function');
    // A Check added after its prompt was made keeps the error it is given; without one, prompt=none answers interaction_required.
    assert.equal(new interactionPolicy.Check('x', 'y', 'login_required', () => false).error, 'login_required');
    assert.match(source('actions/authorization/interactions.js'), /error: error \|\| 'interaction_required',/);
    assert.match(source('helpers/oidc_context.js'), /get acr\(\) \{\s*return this\.session\.acr;/);
    assert.match(source('actions/authorization/resume.js'), /accountId, loginTs, amr, acr, transient: !remember,/);
  });

  it('hinted-subject.ts: the engine loads the id_token_hint only where a request arrives (not at resume or /device), and its login check compares only a loaded hint', () => {
    assert.match(source('actions/authorization/index.js'), /use\(checkIdTokenHint,\s+A, DA,\s+PAR\s+\);/);
    const login = source('helpers/interaction_policy/prompts/login.js');
    assert.match(login, /'id_token_hint',[\s\S]*?if \(oidc\.entities\.IdTokenHint === undefined\) \{\s*return Check\.NO_NEED_TO_PROMPT;/);
    // A check may fail the request with an OIDC error (LoginRequired), which the app is told.
    assert.match(source('actions/authorization/interactions.js'), /await check\(ctx\),/);
  });

  it('hinted-login.ts: the engine\'s login prompt reads no login_hint (it only pre-fills the page), a check may be async, and a session changing person at the resume is signed out first', () => {
    const login = source('helpers/interaction_policy/prompts/login.js');
    // Named only in the prompt's details (the page's pre-fill), by no check.
    assert.equal(login.match(/login_hint/g)?.length, 3);
    assert.match(login, /\.\.\.\(oidc\.params\.login_hint === undefined\s*\? undefined\s*: \{ login_hint: oidc\.params\.login_hint \}\)/);
    assert.match(source('actions/authorization/interactions.js'), /await check\(ctx\),/);
    assert.match(source('actions/authorization/resume.js'), /session\.accountId !== result\.login\.accountId/);
  });

  it("loopback-public-clients.ts: the consent prompt's native_client_prompt asks a native client's request until the person consented in this interaction, and the engine asks the first consent check that asks (interaction_required under prompt=none)", () => {
    const consent = source('helpers/interaction_policy/prompts/consent.js');
    assert.match(consent, /new Check\('native_client_prompt', 'native clients require End-User interaction', 'interaction_required', \(ctx\) => \{\s*const \{ oidc \} = ctx;\s*if \(\s*oidc\.client\.applicationType === 'native'\s*&& oidc\.params\.response_type !== 'none'\s*&& \(!oidc\.result\?\.consent\)\s*\) \{\s*return Check\.REQUEST_PROMPT;/);
    assert.ok(interactionPolicy.base().get('consent')?.checks.some((check) => check.reason === 'native_client_prompt'));
    assert.match(source('helpers/interaction_policy/check.js'), /this\.reason = reason;\s*this\.description = description;\s*this\.error = error;/);
  });

  it("silent-strangers.ts: the login prompt's checks comparing the session's person with someone named are id_token_hint and claims_id_token_sub_value, those weighing its age and acr max_age, essential_acrs and essential_acr, objects whose check() may be replaced; the grant is loaded before the checks run, and one holding nothing gets no code", () => {
    const login = source('helpers/interaction_policy/prompts/login.js');
    assert.match(login, /'id_token_hint',\s*'id_token_hint and authenticated subject do not match',\s*async \(ctx\) => \{/);
    assert.match(login, /'claims_id_token_sub_value',\s*'requested subject could not be obtained',\s*async \(ctx\) => \{/);
    assert.match(login, /new Check\('max_age', 'End-User authentication could not be obtained', \(ctx\) => \{/);
    assert.match(login, /'essential_acrs',\s*'none of the requested ACRs could be obtained',/);
    assert.match(login, /'essential_acr',\s*'requested ACR could not be obtained',/);
    // max_age=0 becomes prompt=login, whose login_required does not depend on the session.
    assert.match(source('actions/authorization/request_parameters.js'), /if \(maxAge === 0\) \{\s*const \{ prompts \} = ctx\.oidc;\s*ctx\.oidc\.params\.max_age = undefined;/);
    assert.match(source('helpers/interaction_policy/check.js'), /this\.error = error;\s*this\.details = details;\s*this\.check = check;/);
    assert.match(source('actions/authorization/interactions.js'), /await check\(ctx\),/);
    assert.match(source('actions/authorization/index.js'), /use\(loadGrant,[^\n]*\n\s*use\(interactions,/);
    assert.match(source('actions/authorization/interactions.js'), /!oidc\.grant\.getOIDCScopeFiltered\(oidc\.requestParamOIDCScopes\)[\s\S]*throw new errors\.AccessDenied\(undefined, 'authorization request resolved without requesting interactions but no scope was granted'\);/);
  });

  it('select-account.ts: the accepted prompt values are the requestable prompts\' names, a requestable prompt gets a check that clear() removes, and a resume\'s result is ctx.oidc.result', () => {
    assert.match(source('helpers/configuration.js'), /this\.interactions\.policy\.forEach\(\(\{ name, requestable \}\) => \{\s*if \(requestable\) \{\s*this\.prompts\.add\(name\);/);
    assert.match(source('actions/authorization/request_parameters.js'), /unsupported prompt value requested/);
    const prompt = new interactionPolicy.Prompt({ name: 'select_account', requestable: true });
    assert.equal(prompt.checks.length, 1);
    prompt.checks.clear();
    assert.equal(prompt.checks.length, 0);
    assert.match(source('actions/authorization/resume.js'), /ctx\.oidc\.result = result;/);
    // The policy's prompts are tried in order and the first with a failing check is asked: select_account's checks sit in login.
    assert.match(source('actions/authorization/interactions.js'), /for \(const \{ name, checks, details: promptDetails \} of policy\)/);
  });

  it('current-registration.ts: resume and the device routes skip the client checks of a new request, run the policy, and the code grants find their codes through find() after client authentication', () => {
    const stack = source('actions/authorization/index.js');
    for (const check of ['checkScope', 'checkRedirectUri', 'checkResponseType']) assert.doesNotMatch(stack, new RegExp(`use\\(${check},[^\\n]*\\bR\\b`), check);
    assert.match(stack, /use\(interactions,\s+A,\s+R, CV, DR\s+\);/);
    assert.match(source('actions/authorization/resume.js'), /ctx\.oidc\.redirectUriCheckPerformed = true;/);
    assert.match(source('actions/authorization/interactions.js'), /for \(const \{ name, checks, details: promptDetails \} of policy\)/);
    assert.match(source('helpers/grant_source.js'), /const source = await Model\.find\(value, \{ ignoreExpiration: true \}\);/);
    for (const grant of ['authorization_code', 'device_code']) assert.match(source(`actions/grants/${grant}.js`), /await findGrantSource\(/);
    assert.match(source('actions/grants/authorization_code.js'), /if \(code\.redirectUri !== ctx\.oidc\.params\.redirect_uri\)/);
    assert.match(source('helpers/grant_common.js'), /scope: source\.scope,/);
    // offline_access as the engine checks it when a request arrives, and where a picked-up request's scope and a code's session binding come from.
    assert.match(source('actions/authorization/scopes.js'), /\|\| !client\.grantTypeAllowed\('refresh_token'\)\s*\)\s*\{\s*scopes\.splice\(scopes\.indexOf\('offline_access'\), 1\);/);
    assert.match(source('helpers/process_response_types.js'), /const scopeSet = combinedScope\(grant, ctx\.oidc\.requestParamScopes, ctx\.oidc\.resourceServers\);[\s\S]*if \(boolean\(await expiresWithSession\(ctx, code\), 'expiresWithSession'\)\)/);
    assert.match(source('actions/authorization/device.js'), /combinedScope\(\s*ctx\.oidc\.grant,\s*ctx\.oidc\.requestParamScopes,/);
    // PKCE is checked when a request arrives only (at /auth and /request), and the code takes the picked-up request's challenge.
    assert.match(stack, /use\(checkPKCE,\s+A,\s+PAR\s+\);/);
    assert.match(source('helpers/process_response_types.js'), /codeChallenge: ctx\.oidc\.params\.code_challenge,/);
    assert.match(source('helpers/grant_common.js'), /expiresWithSession: source\.expiresWithSession,\s*grantId: source\.grantId,/);
  });

  it('dpop-bound-codes.ts: the code grant verifies the DPoP proof before it finds the code, consumes the code before it compares the key with dpop_jkt, and the code keeps dpopJkt', async () => {
    const grant = source('actions/grants/authorization_code.js');
    assert.match(grant, /const dPoP = await validateDpop\(ctx\);\s*const code = await findGrantSource\(/);
    assert.match(grant, /await consumeGrantSource\(ctx, code, 'authorization code'\);[\s\S]*await issueTokens\(/);
    assert.match(source('helpers/grant_common.js'), /gty === 'authorization_code' && source\.dpopJkt && !dPoP[\s\S]*source\.dpopJkt !== dPoP\.thumbprint/);
    assert.match(source('models/authorization_code.js'), /'dpopJkt',/);
    // The thumbprint is RFC 7638's, as jose and the engine compute it.
    const { proofThumbprint } = await import('../../src/provider/patches/dpop-bound-codes.js');
    const { calculateJwkThumbprint, SignJWT } = await import('jose');
    for (const alg of ['ES256', 'EdDSA', 'RS256'] as const) {
      const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
      const jwk = await exportJWK(publicKey);
      const proof = await new SignJWT({}).setProtectedHeader({ alg, typ: 'dpop+jwt', jwk }).sign(privateKey);
      assert.equal(proofThumbprint(proof), await calculateJwkThumbprint(jwk), alg);
    }
    assert.equal(proofThumbprint('not a jwt'), undefined);
  });

  it('dpop-bound-refresh.ts: the refresh_token grant verifies the proof and checks a bound token\'s key before it asks rotateRefreshToken, then makes the rotated token with the old one\'s jkt; first issues bind a public client\'s token only there', () => {
    const grant = source('actions/grants/refresh_token.js');
    assert.match(grant, /const dPoP = await validateDpop\(ctx\);[\s\S]*if \(refreshToken\.jkt && \(!dPoP \|\| refreshToken\.jkt !== dPoP\.thumbprint\)\)[\s\S]*await rotateRefreshToken\(ctx\)[\s\S]*await refreshToken\.consume\(\);[\s\S]*jkt: refreshToken\.jkt,/);
    assert.match(source('helpers/set_rt_bindings.js'), /case 'none':\s*if \(at\.jkt\) \{\s*rt\.jkt = at\.jkt;/);
    assert.doesNotMatch(grant, /setRefreshTokenBindings/);
  });

  it('step-up.ts: the refresh_token grant finds its token through RefreshToken.find, after client authentication, and keeps its acr', () => {
    assert.equal(typeof (provider.RefreshToken as unknown as Record<string, unknown>).find, 'function');
    assert.match(source('actions/grants/refresh_token.js'), /const \{ client \} = ctx\.oidc;[\s\S]*await RefreshToken\.find\(refreshTokenValue, \{ ignoreExpiration: true \}\)/);
    assert.match(source('actions/grants/refresh_token.js'), /acr: refreshToken\.acr,/);
  });

  it('jwt-access-tokens.ts: introspection and revocation refuse structured tokens in one step, after client authentication and the token\'s presence', async () => {
    assert.match(source('shared/reject_structured_tokens.js'), /tokenIsJWT = !!decodeProtectedHeader\(params\.token\);[\s\S]*throw new UnsupportedTokenType\(/);
    for (const endpoint of ['introspection', 'revocation']) {
      assert.match(source(`actions/${endpoint}.js`), /\.\.\.clientAuth,\s*rejectDupes\.bind\(undefined, \{\}\),\s*async function validateTokenPresence\(ctx, next\) \{\s*presence\(ctx, 'token'\);\s*await next\(\);\s*\},\s*rejectStructuredTokens,/);
      assert.match(source('helpers/initialize_app.js'), new RegExp(`post\\('${endpoint}', routes\\.${endpoint}, error\\('${endpoint}\\.error'\\), CORS\\.client, \\.\\.\\.${endpoint}\\);`));
      // Loading the patch put its dispatch in that step's place.
      const steps = ((await import(`oidc-provider/lib/actions/${endpoint}.js`)) as { default: { name: string }[] }).default;
      await import('../../src/provider/patches/jwt-access-tokens.js');
      assert.deepEqual(
        steps.map((step) => step.name).filter((name) => /structured/i.test(name)),
        ['structuredTokens'],
      );
    }
  });

  it('form-bodies.ts: the engine reads form bodies in one urlencoded step per endpoint, by these rules, and Koa\'s context has no charset', async () => {
    const reader = source('shared/selective_body.js');
    assert.match(reader, new RegExp(`const LIMIT = 56 \\* 1024;`));
    // Loaded as the provider loads it (an import, not a require made of a static import here).
    const { FORM_BODY_LIMIT } = await import('../../src/provider/patches/form-bodies.js');
    assert.equal(FORM_BODY_LIMIT, 56 * 1024);
    assert.match(reader, /if \(length !== undefined && length > LIMIT\) \{\s*throw new Error\('request entity too large'\);/);
    assert.match(reader, /if \(length !== undefined && received !== length\) \{\s*throw new Error\('request size did not match content length'\);/);
    assert.match(reader, /return readBody\(ctx\.req, ctx\.request\.length, ctx\.charset\);/);
    assert.match(reader, /ctx\.oidc\.body = querystring\.parse\(body\.toString\(\)\);/);
    assert.match(reader, /throw new InvalidRequest\('failed to parse the request body', undefined, \{ cause \}\);/);
    // The engine's decoding by charset never happens: ctx.charset is undefined (Koa delegates no such property).
    assert.equal('charset' in new Koa().context, false);
    for (const endpoint of ['token', 'introspection', 'revocation', 'userinfo']) {
      assert.match(source(`actions/${endpoint}.js`), /import \{ urlencoded as parseBody \} from '\.\.\/shared\/selective_body\.js';/);
      const steps = ((await import(`oidc-provider/lib/actions/${endpoint}.js`)) as { default: { name: string }[] }).default;
      assert.deepEqual(steps.map((step) => step.name).filter((name) => name === 'formBody' || name === 'urlencoded'), ['formBody'], endpoint);
    }
  });

  it("registration-bearer-challenges.ts: OIDCContext#getAccessToken throws InvalidRequest for a token it cannot take; the registration routes challenge 401s only (dpop: false), by these route names", () => {
    assert.equal(typeof (provider.OIDCContext.prototype as unknown as { getAccessToken?: unknown }).getAccessToken, 'function');
    const context = source('helpers/oidc_context.js');
    assert.match(context, /this\.route = ctx\._matchedRouteName;/);
    assert.match(context, /throw new InvalidRequest\('access tokens must not be provided via query parameter'\);/);
    assert.match(context, /throw new InvalidRequest\('access token must only be provided using one mechanism'\);/);
    const registration = source('actions/registration.js');
    assert.match(registration, /const setWWWAuthenticate = getSetWWWAuthenticateHeader\(\{ dpop: false \}\);/);
    assert.match(source('shared/set_www_authenticate_header.js'), /if \(!err\.expose \|\| \(dpop === false && err\.statusCode !== 401\)\) throw err;/);
    const app = source('helpers/initialize_app.js');
    for (const route of ["post('registration'", "get('client'", "put('client_update'", "del('client_delete'"]) assert.ok(app.includes(route), route);
  });

  it("oversized-bodies.ts: the engine refuses a body over its limit as a malformed one (400, InvalidRequest's status argument left out), and every endpoint the layer names reads its body through that reader", async () => {
    const reader = source('shared/selective_body.js');
    assert.match(reader, /if \(length !== undefined && length > LIMIT\) \{\s*throw new Error\('request entity too large'\);/);
    assert.match(reader, /throw new InvalidRequest\('failed to parse the request body', undefined, \{ cause \}\);/);
    // form-bodies.ts gives its second argument, the status, as 413.
    assert.match(source('helpers/errors.js'), /export class InvalidRequest extends OIDCProviderError \{\s*constructor\(description, code, options\) \{\s*super\(code \?\? 400, 'invalid_request', options\);/);
    for (const action of ['token', 'introspection', 'revocation', 'userinfo', 'authorization/index', 'end_session', 'code_verification']) {
      assert.match(source(`actions/${action}.js`), /import \{ urlencoded as parseBody \} from '\.\.?\/(\.\.\/)?shared\/selective_body\.js';/, action);
    }
    assert.match(source('actions/registration.js'), /import \{ json as parseBody \} from '\.\.\/shared\/selective_body\.js';/);
    // chunkedBodiesTooLarge: the routes the engine reads itself emit these events, after their status and answer are set.
    const { ENGINE_READ_ERRORS } = await import('../../src/provider/patches/oversized-bodies.js');
    const app = source('helpers/initialize_app.js');
    for (const event of ENGINE_READ_ERRORS) assert.ok(app.includes(`error('${event}')`), event);
    assert.match(source('shared/error_handler.js'), /ctx\.status = err\.statusCode \|\| 500;[\s\S]*ctx\.body = out;[\s\S]*provider\.emit\(eventName, ctx, err\);/);
  });

  it('form-bodies.ts: parseForm gives querystring.parse\'s object for every form, names, values, repeats, empty pairs and the pair limit included', async () => {
    const { parseForm } = await import('../../src/provider/patches/form-bodies.js');
    const pieces = ['a', 'b', '=', '&', '&', '=', '__proto__', 'constructor', 'x.y', '-', '_', 'é', '%41', '%', '+', ' ', 'eyJhbGci.eyJ.sig'];
    // A small deterministic generator: the same forms at every run.
    let seed = 7;
    const next = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const forms = ['', '&', '=', 'a', 'a=', '=a', 'a=b=c', 'a=1&a=2&a=3', '&&a=1&&', 'a=1&'.repeat(1200) + 'b=2', '&'.repeat(1500) + 'b=2', 'a=1&'.repeat(999) + 'b=2'];
    for (let i = 0; i < 20_000; i += 1) forms.push(Array.from({ length: next(12) }, () => pieces[next(pieces.length)]).join(''));
    for (const form of forms) {
      const expected = querystring.parse(form);
      const actual = parseForm(form);
      assert.deepStrictEqual(actual, expected, JSON.stringify(form));
      assert.equal(Object.getPrototypeOf(actual), Object.getPrototypeOf(expected));
    }
  });

  it('deferred-consumption.ts: token grants consume through the model, emit grant.success after the handler, and provider.use runs before the routes', () => {
    // Codes, device codes, CIBA requests: consumeGrantSource; refresh tokens: their own consume().
    assert.match(source('helpers/grant_source.js'), /await source\.consume\(\);/);
    assert.match(source('actions/grants/refresh_token.js'), /await refreshToken\.consume\(\);/);
    assert.match(source('actions/token.js'), /await grantTypeHandlers\.get\(grantType\)\(ctx\);\s*ctx\.oidc\.provider\.emit\('grant\.success', ctx\);/);
    // The adapter recognises the request by Provider.ctx (set by the route's ensureOIDC) and its route name.
    assert.match(source('helpers/initialize_app.js'), /post\('token', routes\.token, error\('grant\.error'\)/);
    assert.match(source('helpers/initialize_app.js'), /return als\.run\(ctx, \(\) => next\(\)\);/);
    assert.match(source('provider.js'), /this\.middleware\.splice\(this\.middleware\.indexOf\(this\.#exec\), 0, this\.middleware\.pop\(\)\);/);
  });

  it('deferred-consumption.ts: the authorization endpoint is the route named authorization, its answer a redirect set before the route returns', () => {
    assert.match(source('helpers/initialize_app.js'), /get\('authorization', routes\.authorization, authError, \.\.\.authorization\);/);
    assert.match(source('response_modes/query.js'), /ctx\.status = 303;\s*ctx\.redirect\(uri\);/);
  });

  it('browser-bound-resume.ts: every interaction the engine starts emits interaction.started with ctx after its cookies, and resume destroys the interaction before it processes the result', () => {
    const started = source('actions/authorization/interactions.js');
    assert.match(started, /ctx\.oidc\.entity\('Interaction', interactionSession\);[\s\S]*?cookieName\('resume'\)[\s\S]*?oidc\.provider\.emit\('interaction\.started', ctx, prompt\);/);
    const resume = source('actions/authorization/resume.js');
    assert.ok(resume.indexOf('await interactionSession.destroy();') < resume.indexOf('session.loginAccount('), 'destroy() comes before the login result is taken');
    assert.match(source('helpers/initialize_app.js'), /get\('resume', `\$\{routes\.authorization\}\/:uid`/);
    assert.match(source('helpers/initialize_app.js'), /get\('device_resume', `\$\{routes\.code_verification\}\/:uid`/);
  });

  it('session-max.ts: sessions are read through Session.find and Session.findByUid, keep loginTs, and are saved with ttl.Session called with the session', () => {
    assert.match(source('models/session.js'), /static async findByUid\(uid\)/);
    assert.match(source('models/session.js'), /'loginTs',/);
    assert.match(source('shared/session.js'), /ttl = ttl\(ctx, ctx\.oidc\.session\);/);
  });

  it('tokens-within-session.ts: an access token takes exp, its record\'s lifetime and expires_in from expiresIn, read when saved; the grants find their session-bound artifact\'s session by Session.findByUid first', () => {
    const base = source('models/base_token.js');
    assert.match(base, /get expiration\(\) \{\s*if \(!this\.expiresIn\) \{\s*this\.expiresIn = this\.constructor\.expiresIn\(als\.getStore\(\), this, this\.#client\);/);
    assert.match(base, /async save\(\) \{\s*return super\.save\(this\.remainingTTL\);/);
    assert.match(source('models/base_model.js'), /get remainingTTL\(\) \{\s*if \(!this\.exp\) \{\s*return this\.expiration;/);
    assert.match(source('models/formats/opaque.js'), /const exp = token\.exp \|\| now \+ token\.expiration;/);
    assert.match(source('models/formats/jwt.js'), /const \{ payload \} = await getOpaqueValueAndPayload\(provider, token\);/);
    // AccessToken saves through BaseToken's save (the patch wraps it on AccessToken's prototype only).
    assert.doesNotMatch(source('models/access_token.js'), /\bsave\(/);
    assert.equal(Object.hasOwn(provider.AccessToken.prototype, 'save'), false);
    // The response's expires_in is read after the save.
    const common = source('helpers/grant_common.js');
    assert.ok(common.indexOf('const accessToken = await at.save();') < common.indexOf('expiresIn: at.expiration,'));
    assert.match(common, /expiresWithSession: source\.expiresWithSession,[\s\S]*?sessionUid: source\.sessionUid,/);
    // The code, device code and refresh token are found through checkSessionBinding, which reads the session by uid.
    for (const model of ['authorization_code', 'device_code', 'refresh_token']) assert.match(source(`models/${model}.js`), /return checkSessionBinding\(provider, await super\.find\(\.\.\.args\), args\[1\]\);/, model);
    assert.match(source('models/token_helpers.js'), /if \(!token\?\.expiresWithSession \|\| ignoreSessionBinding\) \{\s*return token;\s*\}\s*const session = await provider\.Session\.findByUid\(token\.sessionUid\);/);
  });

  it("tokens-within-grant.ts: the authorization_code, device_code and refresh_token grants set the Grant entity, found and checked unexpired by validateGrant, before they make the access and refresh tokens (grantId from their source), saved through BaseToken's save, and the ID token, whose lifetime IdToken.expiresIn gives; a grant's exp is stamped on the machine's clock", () => {
    for (const grant of ['authorization_code', 'device_code']) {
      const text = source(`actions/grants/${grant}.js`);
      assert.ok(text.indexOf("ctx.oidc.entity('Grant', grant);") >= 0 && text.indexOf("ctx.oidc.entity('Grant', grant);") < text.indexOf('await issueTokens('), grant);
    }
    const refresh = source('actions/grants/refresh_token.js');
    assert.ok(refresh.indexOf("ctx.oidc.entity('Grant', grant);") < refresh.indexOf('const at = createAccessToken(provider, ctx, {'));
    assert.match(refresh, /const at = createAccessToken\(provider, ctx, \{[\s\S]*?grantId: refreshToken\.grantId,/);
    assert.match(source('helpers/grant_common.js'), /return new provider\.AccessToken\(\{[\s\S]*?grantId: source\.grantId,/);
    assert.match(source('helpers/grant_source.js'), /const grant = await provider\.Grant\.find\(grantId, \{\s*ignoreExpiration: true,\s*\}\);[\s\S]*?if \(grant\.isExpired\) \{/);
    assert.match(source('models/base_model.js'), /this\.exp = epochTime\(\) \+ ttl;/);
    assert.equal(Object.hasOwn(provider.AccessToken.prototype, 'save'), false);
    // Refresh tokens: made with the source's grantId after the Grant entity is set (the code's and device code's
    // in grant_common, a rotation's in refresh_token.js), saved through BaseToken's save too.
    assert.match(source('helpers/grant_common.js'), /const rt = new provider\.RefreshToken\(\{[\s\S]*?grantId: source\.grantId,[\s\S]*?refreshToken = await rt\.save\(\);/);
    assert.ok(refresh.indexOf("ctx.oidc.entity('Grant', grant);") < refresh.indexOf('refreshToken = new RefreshToken({'));
    assert.match(refresh, /refreshToken = new RefreshToken\(\{[\s\S]*?grantId: refreshToken\.grantId,/);
    assert.doesNotMatch(source('models/refresh_token.js'), /\bsave\(/);
    assert.equal(Object.hasOwn(provider.RefreshToken.prototype, 'save'), false);
    // ID tokens: their lifetime is the static expiresIn's, asked with the request's ctx and the client, for use 'idtoken' only.
    const idToken = source('models/id_token.js');
    assert.match(idToken, /case 'idtoken':[\s\S]*?expiresIn: \(expiresIn \|\| this\.constructor\.expiresIn\(this\.ctx, this, client\)\),[\s\S]*?case 'logout':/);
    assert.equal(idToken.match(/constructor\.expiresIn\(/g)?.length, 1, 'no other use asks for it');
    assert.equal(typeof (provider.IdToken as unknown as { expiresIn?: unknown }).expiresIn, 'function');
  });

  it('lifetimes-as-configured.ts: every find of a Grant, RefreshToken, AuthorizationCode, DeviceCode and Interaction passes the stored record to the model\'s static verify before instantiating it; iat is the first save\'s and exp is kept by later saves; the refresh grant finds with ignoreExpiration and checks isExpired', () => {
    const base = source('models/base_model.js');
    assert.match(base, /static async find\(value, \{ ignoreExpiration = false \} = \{\}\) \{[\s\S]*?const payload = await this\.verify\(stored, \{ ignoreExpiration \}\);\s*return this\.instantiate\(payload\);/);
    assert.match(source('models/device_code.js'), /static async findByUserCode\([\s\S]*?const payload = await this\.verify\(stored, \{ ignoreExpiration \}\);/);
    for (const model of ['grant', 'refresh_token', 'authorization_code', 'device_code', 'interaction']) assert.doesNotMatch(source(`models/${model}.js`), /static (async )?verify\(/, model);
    assert.doesNotMatch(source('models/interaction.js'), /static (async )?find\(/);
    // An interaction keeps the exp it was made with at later saves.
    assert.match(source('provider.js'), /await interaction\.save\(interaction\.exp - epochTime\(\)\);/);
    assert.match(source('models/formats/opaque.js'), /iat: token\.iat \|\| epochTime\(\),/);
    assert.match(source('models/base_token.js'), /async save\(\) \{\s*return super\.save\(this\.remainingTTL\);/);
    assert.match(source('actions/grants/refresh_token.js'), /RefreshToken\.find\(refreshTokenValue, \{ ignoreExpiration: true \}\);[\s\S]*?if \(refreshToken\.isExpired\) \{/);
  });

  it('lifetimes-as-configured.ts accessTokensAsConfigured: an opaque AccessToken and ClientCredentials are found through the static find (AccessToken\'s own calls BaseModel\'s), with `aud` and the first save\'s `iat` in the stored payload and isExpired read from `exp`; patched, one past its iat plus the lifetime read now is not found, one within it has its exp lowered, a raised lifetime extends nothing, and a failing read of the lifetime is not "not found"', async () => {
    for (const model of ['access_token', 'client_credentials']) assert.doesNotMatch(source(`models/${model}.js`), /static (async )?verify\(/, model);
    assert.match(source('models/access_token.js'), /static async find\(\.\.\.args\) \{\s*return checkSessionBinding\(provider, await super\.find\(\.\.\.args\), args\[1\]\);/);
    assert.doesNotMatch(source('models/client_credentials.js'), /static (async )?find\(/);
    assert.match(source('models/access_token.js'), /'aud',/);
    assert.match(source('models/client_credentials.js'), /'aud',/);
    assert.match(source('models/base_model.js'), /get isExpired\(\) \{ return this\.exp <= epochTime\(\); \}/);
    const { accessTokensAsConfigured } = await import('../../src/provider/patches/lifetimes-as-configured.js');
    const keys = async () => ({ keys: [{ ...(await exportJWK((await generateKeyPair('ES256', { extractable: true })).privateKey)), alg: 'ES256', use: 'sig' }] });
    // The engine's adapter interface holding what a test put there (the patch is about what find does with a stored record, not the store).
    const stored = new Map<string, object>();
    const holding = class {
      async find(id: string) {
        return stored.get(id);
      }
    };
    const patched = new Provider('http://localhost:3000', { clients: [], adapter: holding as never, features: { devInteractions: { enabled: false } }, jwks: await keys() });
    const asked: unknown[] = [];
    let failing = false;
    accessTokensAsConfigured(patched, async (model, aud) => {
      if (failing) throw new Error('the store is away');
      asked.push([model, aud]);
      return aud === 'https://api.example.test' ? 10 : 100;
    });
    const now = Math.floor(Date.now() / 1000);
    type Finding = { find(value: string, options?: object): Promise<{ exp?: number; isExpired: boolean } | undefined> };
    for (const name of ['AccessToken', 'ClientCredentials']) {
      const model = (patched as unknown as Record<string, Finding>)[name]!;
      const put = async (id: string, payload: object) => void stored.set(id, { jti: id, kind: name, ...payload });
      await put(`${name}-past`, { aud: 'https://api.example.test', iat: now - 20, exp: now + 3000 });
      await put(`${name}-within`, { iat: now - 20, exp: now + 3000 });
      await put(`${name}-shorter`, { iat: now - 20, exp: now + 50 });
      assert.equal(await model.find(`${name}-past`), undefined, name);
      const ignoring = await model.find(`${name}-past`, { ignoreExpiration: true });
      assert.equal(ignoring?.exp, now - 10);
      assert.equal(ignoring?.isExpired, true);
      assert.equal((await model.find(`${name}-within`))?.exp, now + 80);
      assert.equal((await model.find(`${name}-shorter`))?.exp, now + 50, 'a raised lifetime extends nothing');
      failing = true;
      await assert.rejects(model.find(`${name}-within`), /the store is away/);
      failing = false;
    }
    assert.deepEqual(asked[0], ['AccessToken', 'https://api.example.test']);
    assert.ok(asked.some((entry) => JSON.stringify(entry) === JSON.stringify(['ClientCredentials', 'https://api.example.test'])));
  });

  it('exact-expiry.ts: every stored model is verified by the engine with its clockTolerance past exp (so a record past its exp was found); patched, a record whose exp has come is found only with ignoreExpiration, and ReplayDetection keeps the tolerance', async () => {
    assert.match(source('models/base_model.js'), /static async verify\(stored, options = \{\}\) \{\s*return opaque\.verify\(provider, stored, options\);/);
    assert.match(source('models/formats/opaque.js'), /assertPayload\(stored, \{\s*ignoreExpiration,\s*clockTolerance: configuration\.clockTolerance,/);
    const { exactExpiry, STORED_MODELS } = await import('../../src/provider/patches/exact-expiry.js');
    const keys = async () => ({ keys: [{ ...(await exportJWK((await generateKeyPair('ES256', { extractable: true })).privateKey)), alg: 'ES256', use: 'sig' }] });
    const options = { clients: [], adapter, clockTolerance: 15, features: { devInteractions: { enabled: false } } };
    const engine = new Provider('http://localhost:3000', { ...options, jwks: await keys() });
    const patched = new Provider('http://localhost:3000', { ...options, jwks: await keys() });
    exactExpiry(patched);
    const now = Math.floor(Date.now() / 1000);
    type Verifying = { verify(stored: object, options?: object): Promise<unknown> };
    for (const name of STORED_MODELS) {
      const stored = () => ({ jti: 'id', kind: name, iat: now - 60, exp: now - 1 });
      await (engine as unknown as Record<string, Verifying>)[name]!.verify(stored());
      await assert.rejects((patched as unknown as Record<string, Verifying>)[name]!.verify(stored()), name);
      await (patched as unknown as Record<string, Verifying>)[name]!.verify(stored(), { ignoreExpiration: true });
      await (patched as unknown as Record<string, Verifying>)[name]!.verify({ ...stored(), exp: now + 5 });
    }
    assert.equal(Object.hasOwn((patched as unknown as { ReplayDetection: object }).ReplayDetection, 'verify'), false, 'ReplayDetection left as it is');
  });

  it('session-idle.ts: Session.find and findByUid pass the stored session to the static verify Session inherits; a session is saved through Session#save (BaseModel#save stamps exp from ttl and writes the payload IN_PAYLOAD names); the patched verify lowers exp to usedAt plus the idle lifetime now, finds nothing past it, and extends nothing', async () => {
    const base = source('models/base_model.js');
    assert.match(base, /static async find\(value, \{ ignoreExpiration = false \} = \{\}\) \{[\s\S]*?const payload = await this\.verify\(stored, \{ ignoreExpiration \}\);/);
    assert.match(source('models/session.js'), /static async findByUid\(uid\) \{[\s\S]*?const payload = await this\.verify\(stored\);/);
    assert.doesNotMatch(source('models/session.js'), /static (async )?verify\(/);
    assert.match(source('models/session.js'), /const result = await super\.save\(ttl\);/);
    const { sessionsIdleAsConfigured, STORED_EXP } = await import('../../src/provider/patches/session-idle.js');
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const patched = new Provider('http://localhost:3000', { clients: [], adapter, jwks: { keys: [{ ...(await exportJWK(privateKey)), alg: 'ES256', use: 'sig' }] }, features: { devInteractions: { enabled: false } } });
    sessionsIdleAsConfigured(patched, 10);
    const Session = patched.Session as unknown as { IN_PAYLOAD: string[]; verify(stored: object, options?: object): Promise<{ exp?: number }> };
    assert.ok(Session.IN_PAYLOAD.includes('usedAt'));
    const now = Math.floor(Date.now() / 1000);
    const stored = (usedAt: number | undefined, exp: number) => ({ jti: 'session-id', uid: 'uid', kind: 'Session', iat: now - 100, exp, ...(usedAt === undefined ? {} : { usedAt }) });
    await assert.rejects(Session.verify(stored(now - 11, now + 3600)), 'idle past the lifetime now: not found');
    assert.equal((await Session.verify(stored(now - 11, now + 3600), { ignoreExpiration: true })).exp, now - 1, 'the sweeper is given it, its exp lowered');
    assert.equal((await Session.verify(stored(now - 5, now + 3600))).exp, now + 5, 'within it: exp lowered to the bound');
    assert.equal((await Session.verify(stored(now - 5, now + 2))).exp, now + 2, 'a raised lifetime extends nothing');
    assert.equal((await Session.verify(stored(undefined, now + 3600))).exp, now + 3600, 'saved before the release: its stored exp');
    // The instance made of a lowered session knows the exp stored (for unchanged-sessions.ts to write it back).
    const SessionWith = patched.Session as unknown as { instantiate(payload: object): Record<symbol, unknown> };
    assert.equal(SessionWith.instantiate(await Session.verify(stored(now - 5, now + 3600)))[STORED_EXP], now + 3600);
    assert.equal(SessionWith.instantiate(await Session.verify(stored(now - 5, now + 2)))[STORED_EXP], undefined);
    // Every save that writes stamps it, as the save's exp less its ttl (the store is a stand-in here: the write fails after).
    assert.match(base, /this\.exp = epochTime\(\) \+ ttl;\s*\}\s*const \{ value, payload \} = await this\.getValueAndPayload\(\);/);
    const session = new patched.Session() as unknown as { usedAt?: number; exp?: number; save(ttl: number): Promise<unknown> };
    await session.save(60).catch(() => {});
    assert.ok(typeof session.usedAt === 'number' && session.usedAt >= now);
    assert.equal(session.usedAt, session.exp! - 60);
  });

  it("store/adapter.ts (interactionText): the engine copies the session id into an Interaction as session.cookie and never reads it back, finding the session by session.uid; an approval's deviceCode is the code's id, found with DeviceCode.find", () => {
    assert.match(source('models/interaction.js'), /\.\.\.\(session\.jti \? \{ cookie: session\.jti \} : undefined\)/);
    assert.match(source('actions/authorization/interactions.js'), /deviceCode: oidc\.deviceCode\?\.jti,/);
    assert.match(source('actions/authorization/device.js'), /DeviceCode\.find\(\s*ctx\.oidc\.entities\.Interaction\.deviceCode,/);
    assert.match(source('provider.js'), /this\.Session\.findByUid\(interaction\.session\.uid\)/);
    // grep exits 1 when nothing matches.
    const readers = (() => {
      try {
        return execFileSync('grep', ['-rlE', 'session\\??\\.cookie([^s]|$)', join(ROOT, 'node_modules', 'oidc-provider', 'lib')], { encoding: 'utf8' });
      } catch {
        return '';
      }
    })();
    assert.equal(readers, '', 'nothing reads an interaction\'s session.cookie');
  });

  it("sign-in-time.ts: the resume finds the interaction as an entity, then signs its result's login in with Session#loginAccount before it sets ctx.oidc.result; a session keeps its IN_PAYLOAD; auth_time is Session#authTime's and max_age is Session#past's", () => {
    const resume = source('actions/authorization/resume.js');
    const entity = resume.indexOf("ctx.oidc.entity('Interaction', interactionSession);");
    const login = resume.indexOf('session.loginAccount({');
    assert.ok(entity >= 0 && entity < login && login < resume.indexOf('ctx.oidc.result = result;'));
    assert.match(resume, /remember = true, accountId, ts: loginTs, amr, acr,\s*\} = result\.login;/);
    const session = source('models/session.js');
    assert.match(session, /static get IN_PAYLOAD\(\) \{[\s\S]*?'loginTs',/);
    assert.match(session, /authTime\(\) \{\s*return this\.loginTs;\s*\}/);
    assert.match(session, /past\(age\) \{[\s\S]*?epochTime\(\) - this\.loginTs > maxAge;/);
    assert.match(source('models/payload.js'), /result = new Set\(Model\.IN_PAYLOAD\);/);
    assert.match(source('helpers/interaction_policy/prompts/login.js'), /oidc\.session\.past\(oidc\.params\.max_age\)/);
    assert.match(source('helpers/process_response_types.js'), /authTime: ctx\.oidc\.session\.authTime\(\),/);
    assert.match(source('actions/authorization/device.js'), /authTime: ctx\.oidc\.session\.authTime\(\),/);
    const described = Object.getOwnPropertyDescriptor(provider.Session, 'IN_PAYLOAD');
    assert.equal(typeof described?.get, 'function');
  });

  it('session-loaded-once.ts: the authorization stack loads its session with Session.get(ctx), which reads through this.find', () => {
    assert.match(source('shared/session.js'), /new Proxy\(await ctx\.oidc\.provider\.Session\.get\(ctx\)/);
    assert.match(source('models/session.js'), /static async get\(ctx\) \{[\s\S]*?session = await this\.find\(cookieSessionId\);/);
    assert.match(source('actions/authorization/index.js'), /use\(sessionMiddleware, +A, +R, +DR +\);/);
  });

  it('unchanged-sessions.ts: every loaded session is saved at the end of the request, its expiry moved to now + ttl, its cookie set from it', () => {
    const middleware = source('shared/session.js');
    assert.match(middleware, /if \(\(!ctx\.oidc\.session\.new \|\| ctx\.oidc\.session\.touched\) && !ctx\.oidc\.session\.destroyed\) \{/);
    assert.match(middleware, /await ctx\.oidc\.session\.save\(ttl\);/);
    assert.match(middleware, /ary\[index\] \+= `; expires=\$\{new Date\(ctx\.oidc\.session\.exp \* 1000\)\.toUTCString\(\)\}`;/);
    const base = source('models/base_model.js');
    assert.match(base, /this\.exp = epochTime\(\) \+ ttl;/);
    assert.match(base, /return this\.instantiate\(payload\);/);
    // A renewed id is written (oldId), and a saved session is no longer touched (ensureSessionSave persists a touched one).
    assert.match(source('models/session.js'), /if \(this\.oldId\) \{[\s\S]*?this\.touched = false;/);
    assert.match(source('helpers/initialize_app.js'), /if \(ctx\.oidc\.session\?\.touched && !ctx\.oidc\.session\.destroyed\) \{\s*await ctx\.oidc\.session\.persist\(\);/);
    // Where it keeps nothing: these endpoints load a session only to check a token's binding, never save one.
    assert.match(source('models/token_helpers.js'), /const session = await provider\.Session\.findByUid\(token\.sessionUid\);\s*if \(!session\s*\|\| token\.accountId !== session\.accountId/);
    for (const endpoint of ['token', 'userinfo', 'introspection', 'revocation']) {
      assert.doesNotMatch(source(`actions/${endpoint}.js`), /session(Middleware|\.save|\.persist)/i, endpoint);
    }
    // What it compares: everything a session stores but iat and exp.
    assert.deepEqual(
      [...provider.Session.IN_PAYLOAD].sort(),
      ['accountId', 'acr', 'amr', 'authorizations', 'exp', 'iat', 'jti', 'kind', 'loginTs', 'state', 'transient', 'uid'],
    );
  });

  it('store/read-ahead.ts (no patch, a reading): Provider.ctx is the store of lib/helpers/als.js, which the engine runs every request in', () => {
    const ctx = {};
    requests.run(ctx, () => assert.equal(Provider.ctx, ctx));
    assert.match(source('provider.js'), /import als from '\.\/helpers\/als\.js';[\s\S]*?static get ctx\(\) \{\s+return als\.getStore\(\);/);
    assert.match(source('helpers/initialize_app.js'), /return als\.run\(ctx, \(\) => next\(\)\);/);
  });

  it('revocation-response.ts: the revocation endpoint answers an empty body', () => {
    assert.match(source('actions/revocation.js'), /ctx\.body = '';/);
  });

  it("introspected-client-subject.ts: introspection writes sub only for a person's token, and names the token's entity by its kind", () => {
    const introspection = source('actions/introspection.js');
    assert.match(introspection, /if \(introspectable\.has\(token\.kind\)\) \{\s+ctx\.oidc\.entity\(token\.kind, token\);/);
    assert.match(introspection, /if \(token\.accountId\) \{\s+ctx\.body\.sub = token\.accountId;/);
    assert.match(introspection, /const introspectable = new Set\(\['AccessToken', 'ClientCredentials', 'RefreshToken'\]\);/);
  });

  it('client-jwks-freshness.ts: JWTs are verified with KeyStore#selectForVerify\'s keys, and a key store with fresh() read again when none verifies and it is stale; only a client\'s jwks_uri key store has fresh(), and a failed read keeps its keys', () => {
    const jwt = source('helpers/jwt.js');
    assert.match(jwt, /const keys = keystore\.selectForVerify\(\{ alg: protectedHeader\.alg, kid: protectedHeader\.kid \}\);\s+if \(keys\.length === 0\) \{\s+throw new JWKSNoMatchingKey\(\);/);
    assert.match(jwt, /if \(typeof keystore\.fresh !== 'function' \|\| keystore\.fresh\(\)\) \{\s+throw err;\s+\}\s+await keystore\.refresh\(\);\s+return verify\(jwt, keystore, options\);/);
    assert.match(source('models/client.js'), /class ClientKeyStore extends KeyStore \{[\s\S]*?fresh\(\) \{\s+if \(!this\.jwksUri\) return true;/);
    // clientJwks.maxAge: a key store names its provider, and is fresh while freshUntil (epoch seconds) is ahead.
    assert.match(source('models/client.js'), /get provider\(\) \{\s+return this\.#provider;[\s\S]*?const now = epochTime\(\);\s+return !!this\.freshUntil && this\.freshUntil > now;/);
    // A failed read: freshUntil is set before the status and the body are checked, the keys of before cleared only after both.
    assert.match(source('models/client.js'), /this\.freshUntil = Math\.max\(\.\.\.freshUntil\.filter\(Boolean\)\);\s+if \(status !== 200\) \{[\s\S]*?validateJWKS\(body\);\s+this\.clear\(\);/);
    assert.equal(typeof (KeyStore.prototype as unknown as Record<string, unknown>).clear, 'function');
    const callers = execFileSync('grep', ['-rl', 'selectForVerify(', join(ROOT, 'node_modules', 'oidc-provider', 'lib')], { encoding: 'utf8' }).trim().split('\n');
    assert.deepEqual(callers.map((file) => file.split('/lib/')[1]).sort(), ['helpers/jwt.js', 'helpers/keystore.js']);
    const fresh = execFileSync('grep', ['-rl', 'fresh() {', join(ROOT, 'node_modules', 'oidc-provider', 'lib')], { encoding: 'utf8' }).trim().split('\n');
    assert.deepEqual(fresh.map((file) => file.split('/lib/')[1]), ['models/client.js']);
  });

  it('client-jwks-freshness.ts: a client\'s key store is fresh for a minute at least, longer only by the answer\'s Expires or Cache-Control max-age, which only it reads (of what Latchkey uses), fetched through the configured fetch', () => {
    const client = source('models/client.js');
    assert.match(client, /const freshUntil = \[epochTime\(\) \+ 60\];/);
    assert.match(client, /headers\.has\('expires'\)/);
    assert.match(client, /headers\.has\('cache-control'\) && \/max-age=/);
    assert.match(client, /await fetchRequest\(provider, new URL\(this\.jwksUri\)\.href/);
    assert.match(source('helpers/fetch_request.js'), /return instance\(provider\)\.configuration\.fetch\(url, options\);/);
    const readers = execFileSync('grep', ['-rlE', "headers\\.(get|has)\\('(expires|cache-control)'\\)", join(ROOT, 'node_modules', 'oidc-provider', 'lib')], { encoding: 'utf8' }).trim().split('\n');
    // Besides the key store, only the library's own metadata documents, a feature Latchkey keeps off (client-metadata-documents.ts).
    assert.deepEqual(readers.map((file) => file.split('/lib/')[1]).sort(), ['helpers/client_id_metadata_document.js', 'models/client.js']);
  });

  it('client-metadata-documents.ts: the Client constructor takes { cimd }, which filters unsupported values, and the library\'s own CIMD is a feature flag', () => {
    assert.equal(typeof (provider.Client as unknown as Record<string, unknown>).find, 'function');
    assert.match(source('models/client.js'), /constructor\(metadata, ctx, \{ cimd \} = \{\}\) \{\s+const schema = new Client\.Schema\(metadata, ctx, undefined, cimd\);/);
    assert.match(source('helpers/client_schema.js'), /if \(this\.#cimd && length\) \{\s+this\[prop\] = this\[prop\]\.filter/);
    // Our own lookup comes after the library's: with its feature on, it would fetch documents itself, uncached in the store.
    assert.match(source('models/client.js'), /features\.clientIdMetadataDocument\.enabled\s+&& isValidClientIdUrl\(id\)/);
  });

  it('device-polling.ts: DeviceCode.find is how the device_code grant finds its code, the engine never answers slow_down nor interval itself', () => {
    assert.equal(typeof (provider.DeviceCode as unknown as Record<string, unknown>).find, 'function');
    assert.match(source('actions/grants/device_code.js'), /findGrantSource\(\s*ctx,\s*provider\.DeviceCode,/);
    assert.match(source('helpers/grant_source.js'), /Model\.find\(value, \{ ignoreExpiration: true \}\)/);
    assert.doesNotMatch(source('actions/grants/device_code.js'), /SlowDown/);
    assert.doesNotMatch(source('actions/authorization/device.js'), /interval/);
  });

  it('device-token-errors.ts: the device_code grant throws the error saved on its code (found by DeviceCode.find) by its name, with errorDescription, and the device pages save any error of the person\'s side there', () => {
    const grant = source('actions/grants/device_code.js');
    assert.match(grant, /throwIfAsyncGrantError\(code\)/);
    assert.match(source('helpers/grant_common.js'), /if \(entity\.error\) \{\s*const className = upperFirst\(camelCase\(entity\.error\)\);\s*if \(errorMap\[className\]\) \{\s*throw new errorMap\[className\]\(entity\.errorDescription\);/);
    assert.match(source('actions/authorization/device.js'), /Object\.assign\(code, \{\s*error: out\.error,\s*errorDescription: out\.error_description,/);
  });

  it("device-token-errors.ts: a device code's consume() at the poll writes only its mark (the error read as access_denied is never saved); single-use-resume.ts notThisResume: deviceUserFlowErrors finds the code to save an error on only as ctx.oidc.deviceCode or through the Interaction entity, and device_resume sets DeviceCode only after the resume destroyed the interaction", () => {
    assert.match(source('models/device_code.js'), /async consume\(\) \{\s*await this\.adapter\.consume\(this\.jti\);/);
    const device = source('actions/authorization/device.js');
    const errors = device.slice(device.indexOf('export async function deviceUserFlowErrors'), device.indexOf('async function deviceVerificationResponse'));
    assert.match(errors, /let code = ctx\.oidc\.deviceCode;\s*if \(!code && ctx\.oidc\.entities\.Interaction\?\.deviceCode\) \{/);
    assert.equal(errors.match(/DeviceCode\.find/g)?.length, 1, 'one lookup, through the Interaction entity');
    const stack = source('actions/authorization/index.js');
    assert.ok(stack.indexOf('use(deviceUserFlowErrors,') < stack.indexOf('use(getResume,') && stack.indexOf('use(getResume,') < stack.indexOf('use(deviceUserFlow,'), 'errors caught around the resume, the code set after it');
  });

  it('user-code-entry.ts: the code is looked up with DeviceCode.findByUserCode before any change, ?user_code= is posted by an inline script, and an error page persists the session', () => {
    assert.equal(typeof (provider.DeviceCode as unknown as Record<string, unknown>).findByUserCode, 'function');
    const verification = source('actions/code_verification.js');
    const lookup = verification.indexOf('DeviceCode.findByUserCode(');
    assert.ok(lookup > 0 && lookup < verification.indexOf('await code.save()'), 'the lookup comes before the first save');
    assert.match(verification, /if \(ctx\.oidc\.params\.user_code\) \{\s*formPost\(/);
    assert.match(source('helpers/user_codes.js'), /replace\(\/\\W\/g/, 'entry ignores dashes and spaces');
    // The typed code is read from ctx.oidc.params in the step the patch wraps, before it is normalised (NFKC first).
    assert.match(verification, /async function loadDeviceCodeByUserInput\(ctx, next\) \{\s*const \{ userCodeConfirmSource, mask \} = [^;]+;\s*const \{ user_code: userCode, confirm, abort \} = ctx\.oidc\.params;[\s\S]*?const normalized = normalize\(userCode\);/);
    // forgetUnstoredXsrf: the error handler sets a fresh secret before rendering, the outermost middleware persists touched sessions, and persist needs a stored one.
    assert.match(source('shared/error_handler.js'), /generateXsrf\(ctx, \(\) => \{\}\);[\s\S]*userCodeInputSource\(/);
    assert.match(source('helpers/initialize_app.js'), /if \(ctx\.oidc\.session\?\.touched && !ctx\.oidc\.session\.destroyed\) \{\s*await ctx\.oidc\.session\.persist\(\);/);
    assert.match(source('models/session.js'), /if \(typeof this\.exp !== 'number'\) \{\s*throw new TypeError\('persist can only be called on previously persisted Sessions'\);/);
  });

  it('upstream-end-session.ts: end_session_confirm ends the session, then answers 303 with a Location it may replace', () => {
    const confirm = source('actions/end_session.js');
    assert.match(confirm, /paramsMiddleware\.bind\(undefined, new Set\(\['xsrf', 'logout'\]\)\)/);
    assert.match(confirm, /await session\.destroy\(\);[\s\S]*ctx\.status = 303;\s*ctx\.redirect\(uri\);/);
    assert.match(source('helpers/initialize_app.js'), /post\('end_session_confirm'/);
  });

  it("logout-order.ts: end_session_confirm looks each of the session's apps up with Client.find(clientId), skipping only InvalidClient, and calls an app's backchannelLogout before it looks up the next", () => {
    const confirm = source('actions/end_session.js');
    assert.match(confirm, /async function clientForLogout\(ctx, clientId\) \{\s*try \{\s*return await ctx\.oidc\.provider\.Client\.find\(clientId\);\s*\} catch \(err\) \{\s*if \(err instanceof InvalidClient\) \{\s*return undefined;\s*\}\s*throw err;/);
    assert.match(confirm, /for \(const clientId of clientIds\) \{\s*if \(params\.logout \|\| clientId === state\.clientId\) \{\s*const client = await clientForLogout\(ctx, clientId\);[\s\S]*?back\.push\(client\.backchannelLogout\(accountId, sid\)/);
  });

  it('backchannel-retry.ts: Client#backchannelLogout signs a new logout token (new jti, iat now) at each call and rejects on an answer other than 200/204 with the Response as error.response', () => {
    const client = source('models/client.js');
    assert.match(client, /async backchannelLogout\(sub, sid\) \{\s*const logoutToken = new provider\.IdToken\(\{ sub \}, \{ client: this, ctx: undefined \}\);/);
    assert.match(client, /logoutToken\.set\('jti', nanoid\(\)\);/);
    assert.match(client, /return fetchRequest\(provider, new URL\(this\.backchannelLogoutUri\)\.href, \{[\s\S]*?body: new URLSearchParams\(\{ logout_token: await logoutToken\.issue\(\{ use: 'logout' \}\) \}\),/);
    assert.match(client, /if \(status !== 200 && status !== 204\) \{[\s\S]*?error\.response = response;\s*throw error;/);
    assert.equal(typeof (provider.Client.prototype as unknown as Record<string, unknown>).backchannelLogout, 'function');
  });

  it("backchannel-retry.ts: a client's clientIdIssuedAt is its client_id_issued_at, which an RFC 7592 update keeps (a retry tells a client made again with the id by it)", () => {
    assert.match(source('actions/registration.js'), /const properties = omitBy\(\{\s*client_id: ctx\.oidc\.client\.clientId,\s*client_id_issued_at: ctx\.oidc\.client\.clientIdIssuedAt,/);
    assert.match(source('models/client.js'), /Object\.assign\(this, mapKeys\(schema, \(_value, key\) => \{\s*if \(!instance\(provider\)\.RECOGNIZED_METADATA\.includes\(key\)\) \{\s*return key;\s*\}\s*return camelCase\(key\);/);
    assert.match(source('consts/client_attributes.js'), /RECOGNIZED_METADATA = \[[^\]]*'client_id_issued_at',/);
  });

  it('session-max.ts: the engine never asks Session.find with ignoreExpiration (only the expiry sweep does, and is given the session past ttl.sessionMax)', () => {
    // The session's own read of its cookie's session, without options; no other Session.find in the engine.
    assert.match(source('models/session.js'), /session = await this\.find\(cookieSessionId\);/);
    const lib = join(ROOT, 'node_modules', 'oidc-provider', 'lib');
    // grep exits 1 when nothing matches.
    const finders = (() => {
      try {
        return execFileSync('grep', ['-rlE', 'Session\\.find\\(', lib], { encoding: 'utf8' });
      } catch {
        return '';
      }
    })();
    assert.equal(finders, '', 'no Session.find in the engine but its own');
    // The one find with ignoreExpiration on a model it is given is findGrantSource's, given grant sources (codes, device codes, CIBA requests).
    for (const line of execFileSync('grep', ['-rn', 'findGrantSource(', join(lib, 'actions')], { encoding: 'utf8' }).split('\n').filter(Boolean)) assert.doesNotMatch(line, /Session/);
  });

  it('openid-scopes.ts: the engine takes its OpenID scopes from requestParamOIDCScopes and Grant#getOIDCScope, and sets a userinfo token\'s scope from the grant\'s', () => {
    assert.match(source('helpers/oidc_context.js'), /get requestParamOIDCScopes\(\) \{\s*return new Set\(this\.params\.scope\?\.split\(' '\)\.filter\(Set\.prototype\.has\.bind\(state\.configuration\.scopes\)\)\);/);
    const grant = source('models/grant.js');
    assert.match(grant, /getRejectedOIDCScope\(\) \{\s*this\.rejected \|\|= \{\};\s*return this\.getOIDCScope\.call\(this\.rejected\);/);
    assert.match(grant, /getOIDCScopeFiltered\(filter\) \{[\s\S]*?const granted = this\.getOIDCScope\(\)\.split\(' '\);/);
    assert.match(grant, /getOIDCScopeEncountered\(\) \{\s*const granted = this\.getOIDCScope\(\)\.split\(' '\);/);
    // The access token for userinfo, at the code (and device code) grant and at refresh.
    assert.match(source('helpers/grant_authorization.js'), /\} else \{\s*token\.claims = source\.claims;\s*token\.scope = grant\.getOIDCScopeFiltered\(scope \|\| source\.scopes\);/);
    assert.match(source('actions/grants/refresh_token.js'), /\} else \{\s*at\.claims = refreshToken\.claims;\s*at\.scope = grant\.getOIDCScopeFiltered\(scope\);/);
    assert.match(source('helpers/interaction_policy/prompts/consent.js'), /for \(const scope of oidc\.requestParamOIDCScopes\) \{/);
  });

  it('openid-scopes.ts: an API\'s scope is no OpenID scope, in a request or in a grant recorded before the patch', async () => {
    const { openIdScopesOnly } = await import('../../src/provider/patches/openid-scopes.js');
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const jwks = { keys: [{ ...(await exportJWK(privateKey)), alg: 'ES256', use: 'sig' }] };
    const patched = new Provider('http://localhost:3000', { clients: [], adapter, jwks, scopes: ['openid', 'email', 'read'], features: { devInteractions: { enabled: false } } });
    const grant = new patched.Grant({ accountId: 'a', clientId: 'c' });
    grant.addOIDCScope('openid email read');
    grant.rejectOIDCScope('email read');
    const context = Object.create(patched.OIDCContext.prototype, { params: { value: { scope: 'openid email read' } } }) as { requestParamOIDCScopes: Set<string> };
    assert.deepEqual([...context.requestParamOIDCScopes], ['openid', 'email', 'read'], 'unpatched');
    openIdScopesOnly(patched, ['openid', 'offline_access', 'profile', 'email']);
    assert.deepEqual([...context.requestParamOIDCScopes], ['openid', 'email']);
    assert.equal(grant.getOIDCScope(), 'openid');
    assert.equal(grant.getOIDCScopeFiltered(new Set(['openid', 'read'])), 'openid');
    assert.equal(grant.getRejectedOIDCScope(), 'email');
    assert.equal(grant.getOIDCScopeEncountered(), 'openid email');
  });

  it('client-metadata.ts: a client object is made once for its metadata and never changed: Client.find keeps stored ones by a hash of it, an update makes a new one', () => {
    const client = source('models/client.js');
    assert.match(client, /const propHash = crypto\.hash\('sha256', JSON\.stringify\(properties\), 'base64url'\);\s*let client = dynamicClients\.get\(propHash\);/);
    assert.match(client, /metadata\(\) \{\s*return mapKeys\(this,/);
    assert.match(source('actions/registration.js'), /const client = await addClient\(provider, properties, \{ store: true, ctx \}\);\s*ctx\.body = client\.metadata\(\);/);
    // Nothing in the engine assigns to a client's properties after it is made.
    const assigned = execFileSync('sh', ['-c', 'grep -rlE "(ctx\\.oidc\\.client|\\bclient)\\.[a-zA-Z]+ = " "$0" || true', join(ROOT, 'node_modules', 'oidc-provider', 'lib')], { encoding: 'utf8' }).trim();
    assert.equal(assigned, '');
  });

  it('single-use-registration-token.ts: an RFC 7592 update (route client_update) destroys the presented registration access token before it saves the new one', () => {
    assert.match(source('helpers/initialize_app.js'), /put\('client_update', clientRoute,/);
    assert.match(source('actions/registration.js'), /await ctx\.oidc\.registrationAccessToken\.destroy\(\);\s*ctx\.oidc\.entity\('RegistrationAccessToken', rat\);\s*ctx\.body\.registration_access_token = await rat\.save\(\);/);
  });

  it('registration-token-first.ts: an RFC 7591 registration (route registration) makes its registration access token, with its policies, before it writes the client through addClient, and saves it after', () => {
    assert.match(source('helpers/initialize_app.js'), /post\('registration', routes\.registration,/);
    assert.match(source('actions/registration.js'), /rat = new provider\.RegistrationAccessToken\(\{ clientId \}\);\s*ctx\.oidc\.entity\('RegistrationAccessToken', rat\);[\s\S]*rat\.policies = policies;[\s\S]*const client = await addClient\(provider, properties, \{ store: true, ctx \}\);[\s\S]*registration_access_token: await rat\.save\(\),/);
  });

  it('registration/clients.ts reads the Client model\'s adapter (Client.adapter)', () => {
    assert.equal(typeof (provider.Client as unknown as { adapter?: { find?: unknown } }).adapter?.find, 'function');
  });

  it('error-descriptions.ts: the authorization endpoint answers through the response modes the provider keeps (instance(provider).responseModes), errors with the payload of errOut', () => {
    const modes = (instance(provider) as { responseModes?: Map<string, unknown> }).responseModes;
    assert.deepEqual([...(modes?.keys() ?? [])].sort(), ['form_post', 'fragment', 'query']);
    assert.match(source('shared/authorization_error_handler.js'), /instance\(provider\)\.responseModes\.get\(mode\);[\s\S]*await handler\(ctx, safe\(params\.redirect_uri\), omitBy\(out,/);
    assert.match(source('helpers/err_out.js'), /error_description: description/);
  });

  it("session-app-reads.ts: Session#authorizationFor adds a client's entry when only read (sidFor, grantIdFor), loadGrant makes one with ensureClientContainer when a grant is attached, and end_session tells every entry's app", () => {
    assert.equal(typeof (provider.Session.prototype as unknown as { authorizationFor?: unknown }).authorizationFor, 'function');
    assert.match(source('models/session.js'), /authorizationFor\(clientId, value\) \{\s*if \(value === undefined && !this\.authorizations\) \{\s*return \{\};\s*\}\s*this\.authorizations = this\.authorizations \|\| \{\};\s*if \(!this\.authorizations\[clientId\]\) \{\s*this\.authorizations\[clientId\] = \{\};/);
    assert.match(source('actions/authorization/session.js'), /ctx\.oidc\.session\.ensureClientContainer\(ctx\.oidc\.params\.client_id\);\s*ctx\.oidc\.session\.grantIdFor\(ctx\.oidc\.params\.client_id, grant\.jti\);/);
    assert.match(source('actions/end_session.js'), /const clientIds = Object\.keys\(session\.authorizations \|\| \{\}\);[\s\S]*const sid = session\.sidFor\(client\.clientId\);/);
  });

  it("session-app-reads.ts: Session#grantIdFor(clientId, value) writes the grant into the client's entry (made when missing) of session.authorizations, saved whole; the patched one stamps the entry's sign-in when the grant changes, not when it is the same", async () => {
    assert.match(source('models/session.js'), /grantIdFor\(clientId, value\) \{\s*const authorization = this\.authorizationFor\(clientId, value\);\s*if \(value\) \{\s*authorization\.grantId = value;/);
    assert.match(source('models/session.js'), /static get IN_PAYLOAD\(\) \{[\s\S]*?'authorizations',/);
    const { appsOnlyBySignIn } = await import('../../src/provider/patches/session-app-reads.js');
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const patched = new Provider('http://localhost:3000', { clients: [], adapter, jwks: { keys: [{ ...(await exportJWK(privateKey)), alg: 'ES256', use: 'sig' }] } });
    appsOnlyBySignIn(patched);
    const session = new patched.Session() as unknown as { authorizations?: Record<string, { grantId?: string; signedInAt?: number }>; grantIdFor(clientId: string, value?: string): string | undefined };
    session.grantIdFor('app', 'grant-1');
    assert.equal(session.authorizations?.app?.grantId, 'grant-1');
    assert.equal(typeof session.authorizations?.app?.signedInAt, 'number');
    session.authorizations!.app!.signedInAt = 1;
    session.grantIdFor('app', 'grant-1');
    assert.equal(session.authorizations.app.signedInAt, 1, 'the same grant again is no new sign-in (no session write for it)');
    session.grantIdFor('app', 'grant-2');
    assert.ok(session.authorizations.app.signedInAt > 1, 'another grant is');
    assert.equal(session.grantIdFor('app'), 'grant-2');
  });

  it("refreshed-id-token-nonce.ts: the engine puts the sign-in's nonce in an ID token with IdToken#set('nonce'), in issueIdToken, which the refresh_token grant calls", () => {
    assert.equal(typeof (provider.IdToken as unknown as { prototype: { set?: unknown } }).prototype.set, 'function');
    assert.match(source('helpers/grant_common.js'), /token\.set\('nonce', source\.nonce\);/);
    assert.match(source('actions/grants/refresh_token.js'), /await issueIdToken\(provider, ctx, refreshToken,/);
  });

  it("narrowed-refresh-claims.ts: a refresh copies the refresh token's claims asked by name onto the access token before saving it and hands them to issueIdToken, which sets them as the ID token's mask, read when it is issued; the request's scope is ctx.oidc.requestParamScopes", async () => {
    const refresh = source('actions/grants/refresh_token.js');
    assert.match(refresh, /ctx\.oidc\.entity\('RotatedRefreshToken', refreshToken\);/);
    assert.match(refresh, /const scope = ctx\.oidc\.params\.scope \? ctx\.oidc\.requestParamScopes : refreshToken\.scopes;/);
    assert.match(refresh, /at\.claims = refreshToken\.claims;/);
    assert.ok(refresh.indexOf('at.claims = refreshToken.claims;') < refresh.indexOf('const accessToken = await at.save();'), 'the claims are set before the save');
    assert.ok(refresh.indexOf('const accessToken = await at.save();') < refresh.indexOf('await issueIdToken(provider, ctx, refreshToken, at, grant, scope);'));
    const common = source('helpers/grant_common.js');
    assert.match(common, /const claims = filterClaims\(source\.claims, 'id_token', grant\);[\s\S]*?token\.mask = claims;[\s\S]*?return token\.issue\(\{ use: 'idtoken' \}\);/);
    assert.match(source('models/id_token.js'), /mask\.mask\(this\.mask\);/);
    assert.match(source('actions/userinfo.js'), /filterClaims\(ctx\.oidc\.accessToken\.claims, 'userinfo', ctx\.oidc\.grant\)/);
    assert.equal(typeof (provider.IdToken as unknown as { prototype: { issue?: unknown } }).prototype.issue, 'function');
    assert.match(source('helpers/oidc_context.js'), /get requestParamScopes\(\) \{/);
    // What is left out: the claims of the OpenID scopes the refresh token holds and the request's scope does not name.
    const { claimsLeftOut } = await import('../../src/provider/patches/narrowed-refresh-claims.js');
    const refreshing = (held: string, asked: string | undefined) => ({
      oidc: {
        route: 'token',
        params: { grant_type: 'refresh_token', scope: asked },
        requestParamScopes: new Set((asked ?? '').split(' ')),
        entities: { RotatedRefreshToken: { scopes: new Set(held.split(' ')) } },
      },
    });
    assert.deepEqual([...claimsLeftOut(refreshing('openid email profile offline_access', 'openid offline_access'))].sort(), ['email', 'email_verified', 'family_name', 'given_name', 'locale', 'name', 'updated_at']);
    assert.deepEqual([...claimsLeftOut(refreshing('openid email offline_access', 'openid email offline_access'))], []);
    assert.deepEqual([...claimsLeftOut(refreshing('openid email offline_access', undefined))], [], 'no scope asked: not narrowed');
  });

  it("method-not-allowed.ts: the provider keeps its router (instance(provider).router), whose match(method, path) says whether a method has a route, GET's serving HEAD", () => {
    const engine = (instance(provider) as { router?: { match(method: string, path: string): unknown } }).router;
    assert.equal(typeof engine?.match, 'function');
    assert.ok(engine!.match('POST', '/token'));
    assert.equal(engine!.match('GET', '/token'), undefined);
    assert.ok(engine!.match('HEAD', '/jwks'));
    assert.ok(engine!.match('POST', '/me'));
    assert.equal(engine!.match('POST', '/token/nowhere'), undefined);
  });

  it("method-not-allowed.ts: a match names its route's path, the configured one (configuration.routes); GET /device/auth matches the device resume's /device/:uid, POST the device authorization endpoint", async () => {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const jwks = { keys: [{ ...(await exportJWK(privateKey)), alg: 'ES256', use: 'sig' }] };
    const device = new Provider('http://localhost:3000', { clients: [], adapter, jwks, features: { devInteractions: { enabled: false }, deviceFlow: { enabled: true } } });
    const engine = (instance(device) as { router?: { match(method: string, path: string): { route: { path: string } } | undefined } }).router!;
    const routes = (instance(device) as { configuration?: { routes?: Record<string, string> } }).configuration?.routes;
    assert.equal(routes?.device_authorization, '/device/auth');
    assert.equal(routes?.code_verification, '/device');
    assert.equal(engine.match('POST', '/device/auth')?.route.path, '/device/auth');
    assert.equal(engine.match('GET', '/device/auth')?.route.path, '/device/:uid');
    assert.equal(engine.match('HEAD', '/device/auth/')?.route.path, '/device/:uid');
    assert.equal(engine.match('POST', '/session/end/confirm')?.route.path, '/session/end/confirm');
  });

  it("unique-user-codes.ts: a device authorization whose drawn user code a live code holds (the store's UserCodeTaken) draws another, and answers the code saved", async () => {
    assert.match(source('actions/authorization/device.js'), /const userCode = generate\(charset, mask\);[\s\S]*userCode: normalize\(userCode\),[\s\S]*device_code: await dc\.save\(\),\s*user_code: userCode,/);
    // A store where the first two codes drawn are another device's.
    const tried: string[] = [];
    const saved = new Map<string, Record<string, unknown>>();
    class Store {
      constructor(readonly model: string) {}
      upsert(id: string, payload: Record<string, unknown>) {
        if (this.model === 'DeviceCode') {
          tried.push(payload.userCode as string);
          if (tried.length <= 2) return Promise.reject(new UserCodeTaken());
        }
        saved.set(`${this.model}:${id}`, payload);
        return Promise.resolve();
      }
      find(id: string) {
        return Promise.resolve(saved.get(`${this.model}:${id}`));
      }
      findByUserCode = () => Promise.resolve(undefined);
      findByUid = () => Promise.resolve(undefined);
      consume = () => Promise.resolve();
      destroy = () => Promise.resolve();
      revokeByGrantId = () => Promise.resolve();
    }
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const jwks = { keys: [{ ...(await exportJWK(privateKey)), alg: 'ES256', use: 'sig' }] };
    const clients = [{ client_id: 'tv', application_type: 'native' as const, token_endpoint_auth_method: 'none' as const, id_token_signed_response_alg: 'ES256' as const, grant_types: ['urn:ietf:params:oauth:grant-type:device_code'], redirect_uris: [], response_types: [] }];
    const device = new Provider('http://localhost:3000', { clients, adapter: Store as never, jwks, features: { devInteractions: { enabled: false }, deviceFlow: { enabled: true, charset: 'base-20', mask: '****-****' } } });
    const app = new Koa();
    app.use(uniqueUserCodes(device, 'base-20', '****-****'));
    app.use(mount(device as unknown as Koa));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      // With a scope: a file run before this one in the same process may have patched the engine to require one (scope-required.ts).
      const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/device/auth`, { method: 'POST', body: new URLSearchParams({ client_id: 'tv', scope: 'openid' }) });
      const body = (await response.json()) as { user_code?: string; verification_uri_complete?: string };
      assert.equal(response.status, 200, JSON.stringify(body));
      assert.equal(tried.length, 3);
      assert.equal(body.user_code?.replace('-', ''), tried[2], 'the answer names the code saved');
      assert.equal(new URL(body.verification_uri_complete!).searchParams.get('user_code'), body.user_code);
      assert.equal([...saved.values()].find((payload) => payload.kind === 'DeviceCode')?.userCode, tried[2]);
    } finally {
      server.close();
    }
  });

  it('error-descriptions.ts: a JSON error body and a WWW-Authenticate challenge leave with an error_description in RFC 6749 §5.2 / RFC 6750 §3 characters', async () => {
    const headers = new Map<string, string | string[]>([['WWW-Authenticate', ['Bearer realm="x", error="invalid_token", error_description="no \\"caf\u00e9\\" \u00a73"', 'Basic realm="x"']]]);
    const ctx = {
      status: 401,
      body: { error: 'invalid_token', error_description: 'no "caf\u00e9" \\ \u00a73.1 \u2026' } as unknown,
      response: { get: (name: string) => headers.get(name) },
      set: (name: string, value: string | string[]) => headers.set(name, value),
    };
    await errorDescriptionsInOrder()(ctx as never, () => Promise.resolve());
    assert.deepEqual(ctx.body, { error: 'invalid_token', error_description: "no 'caf?' / section 3.1 ..." });
    assert.deepEqual(headers.get('WWW-Authenticate'), ['Bearer realm="x", error="invalid_token", error_description="no \'caf?\' section 3"', 'Basic realm="x"']);
  });

  it('shared-oidc-getter.ts: the engine defines ctx.oidc with a getter of its own per request; patched, every request shares one getter and still reads its own OIDCContext', async () => {
    assert.match(source('helpers/initialize_app.js'), /Object\.defineProperty\(ctx, 'oidc', \{\s*get: \(\) => \{\s*oidcCtx \|\|= new this\.OIDCContext\(ctx\);\s*return oidcCtx;\s*\},\s*\}\);\s*return als\.run\(ctx, \(\) => next\(\)\);/);
    const { shareOidcGetter } = await import('../../src/provider/patches/shared-oidc-getter.js');
    shareOidcGetter();
    shareOidcGetter(); // once per process, however often a provider is built
    const app = new Koa();
    const seen: { ctx: object; descriptor: PropertyDescriptor; first: unknown; again: unknown }[] = [];
    app.use(async (ctx, next) => {
      await next();
      const oidc = (ctx as unknown as { oidc: unknown }).oidc;
      seen.push({ ctx, descriptor: Object.getOwnPropertyDescriptor(ctx, 'oidc')!, first: oidc, again: (ctx as unknown as { oidc: unknown }).oidc });
    });
    app.use(mount(provider as unknown as Koa));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      for (let i = 0; i < 2; i += 1) assert.equal((await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`)).status, 200);
    } finally {
      server.close();
    }
    assert.equal(seen.length, 2);
    const [one, two] = seen as [(typeof seen)[0], (typeof seen)[0]];
    assert.equal(one.descriptor.get, two.descriptor.get, 'one getter for every request');
    for (const { ctx, descriptor, first, again } of seen) {
      // As the engine defines it: own, not configurable, not enumerable, no setter; made once, for this request.
      assert.deepEqual([descriptor.configurable, descriptor.enumerable, descriptor.set], [false, false, undefined]);
      assert.equal(first, again);
      assert.equal((first as { ctx: unknown; route: unknown }).ctx, ctx);
      assert.equal((first as { route: unknown }).route, 'jwks');
      assert.throws(() => Object.defineProperty(ctx, 'oidc', { get: () => undefined }), TypeError);
    }
    assert.notEqual(one.first, two.first);
    // Any other definition goes through unchanged.
    const plain: Record<string, unknown> = {};
    const getter = () => 42;
    Object.defineProperty(plain, 'oidc', { get: getter });
    assert.equal(Object.getOwnPropertyDescriptor(plain, 'oidc')!.get, getter);
  });

  it('cors-header-scan.ts: the engine\'s CORS step first scans every response header for Access-Control-*; patched, it reads no copy of the headers and decides as before', async () => {
    // The step as the patch recognises it, and the scan as its first statement (what the empty read answers).
    assert.match(source('shared/cors.js'), /return async \(ctx, next\) => \{\s*const headers = Object\.keys\(ctx\.response\.headers\);\s*if \(headers\.find\(\(x\) => x\.toLowerCase\(\)\.startsWith\('access-control-'\)\)\) \{\s*return next\(\);\s*\}/);
    assert.match(source('helpers/initialize_app.js'), /post\('token', routes\.token, error\('grant\.error'\), CORS\.clientWithDPoP, \.\.\.token\);/);
    cheaperCorsHeaderScan();
    cheaperCorsHeaderScan(); // once per process, however often a provider is built
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const jwks = { keys: [{ ...(await exportJWK(privateKey)), alg: 'ES256', use: 'sig' }] };
    const clients = [{ client_id: 'app', client_secret: 'a-secret', grant_types: ['client_credentials'], redirect_uris: [], response_types: [] }];
    const patched = new Provider('http://localhost:3000', { clients, adapter, jwks, features: { devInteractions: { enabled: false } } });
    const app = new Koa();
    let copies = 0;
    app.use(async (ctx, next) => {
      // Headers set before the engine, as app.ts's security headers are; one path sets a CORS header of its own.
      for (let i = 0; i < 14; i += 1) ctx.set(`X-Preset-${i}`, 'x');
      if (ctx.query.preset !== undefined) ctx.set('Access-Control-Allow-Origin', 'https://set.before.example');
      const { res } = ctx;
      const getHeaders = res.getHeaders;
      res.getHeaders = function counted(this: typeof res) {
        copies += 1;
        return getHeaders.call(this);
      };
      await next();
      assert.equal(ctx.response.headers['x-preset-0'], 'x', "Koa's headers read as before after the step");
    });
    app.use(mount(patched as unknown as Koa));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const token = (query: string, headers: Record<string, string>) =>
      fetch(`${base}/token${query}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: 'grant_type=client_credentials&client_id=app&client_secret=wrong' });
    try {
      const fromOrigin = await token('', { origin: 'https://app.example' });
      assert.equal(fromOrigin.status, 400, await fromOrigin.clone().text()); // past the CORS step
      assert.equal(fromOrigin.headers.get('access-control-allow-origin'), 'https://app.example');
      assert.equal(fromOrigin.headers.get('access-control-expose-headers'), 'WWW-Authenticate');
      assert.equal(fromOrigin.headers.get('vary'), 'Origin');
      const without = await token('', {});
      assert.equal(without.headers.get('access-control-allow-origin'), '*');
      // A CORS header already set: the engine's step leaves the answer's CORS to whoever set it.
      const preset = await token('?preset', { origin: 'https://app.example' });
      assert.equal(preset.headers.get('access-control-allow-origin'), 'https://set.before.example');
      assert.equal(preset.headers.get('access-control-expose-headers'), null);
      assert.equal(preset.headers.get('vary'), null);
      const preflight = await fetch(`${base}/token`, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } });
      assert.equal(preflight.status, 204);
      assert.equal(preflight.headers.get('access-control-allow-methods'), 'POST');
    } finally {
      server.close();
    }
    // Only the step that found a CORS header read the copy (the `preset` request); the checks after `next` read their own.
    assert.equal(copies, 1 + 4);
  });

  it('matched-route.ts: @koa/router leaves the matched path pattern on ctx._matchedRoute', async () => {
    const app = new Koa();
    const router = new Router();
    let seen: string | undefined;
    router.get('/things/:id', (ctx) => {
      seen = matchedRoute(ctx);
      ctx.body = 'ok';
    });
    app.use(router.routes());
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/things/42`);
      assert.equal(response.status, 200);
      assert.equal(seen, '/things/:id');
    } finally {
      server.close();
    }
  });
});
