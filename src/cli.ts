#!/usr/bin/env node
/**
 * The `latchkey` command line: every command, its options and its help. What each command does
 * is in cli-actions.ts, by the command's words, and is loaded only when a command runs, so that
 * `--help`, `--version` and usage errors load commander alone (the actions load the settings, the
 * store, the key ring and argon2: most of a help run's CPU when they were loaded for it).
 */
// First: it refuses an old Node before argon2's addon can crash it.
import './node-version.js';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { collect, oneValueEach } from './cli-options.js';
import { ROOT } from './paths.js';

/** A command's action (commander gives its arguments, its options and the command last), from cli-actions.ts. */
async function run(...args: unknown[]): Promise<void> {
  const { runCommand } = await import('./cli-actions.js');
  await runCommand(names(args.at(-1) as Command), args);
}

/**
 * The settings module, for the two answers commander needs at once (an option's bound, a usage
 * error's hint): Node loads an ES module synchronously by require, and only then.
 */
const settingsModule = () => createRequire(import.meta.url)('./config.js') as typeof import('./config.js');

/** Parses an option's number of seconds (commander reports a refusal as a usage error). */
function positiveSeconds(value: string): number {
  const seconds = Number(value);
  if (!Number.isSafeInteger(seconds) || seconds <= 0) throw new InvalidArgumentError('expected a positive number of seconds.');
  return seconds;
}

/** `--expires-in` of an initial access token: positive, and it ends by itself within 30 days. */
function initialAccessTokenSeconds(value: string): number {
  const seconds = positiveSeconds(value);
  const { INITIAL_ACCESS_TOKEN_MAX } = settingsModule();
  if (seconds > INITIAL_ACCESS_TOKEN_MAX) throw new InvalidArgumentError(`expected at most ${INITIAL_ACCESS_TOKEN_MAX} seconds (30 days).`);
  return seconds;
}

/** `--grace` of a secret rotation: 0 (the old secret stops at once) or more seconds. */
function graceSeconds(value: string): number {
  const seconds = Number(value);
  if (!Number.isSafeInteger(seconds) || seconds < 0) throw new InvalidArgumentError('expected a number of seconds, 0 or more.');
  return seconds;
}

const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

const program = new Command('latchkey')
  .description('Latchkey: a self-hosted OAuth 2.0 / OpenID Connect provider')
  .version(version, '-V, --version', 'print the version')
  .addHelpText(
    'after',
    `
Every command reads the server's configuration (config/, CONFIG_FILE, environment variables) and
acts on its store: give it the same REDIS_URL (and REDIS_KEY_PREFIX, if set) as the server to act
on Redis; without REDIS_URL it acts on the embedded store of the server started from this
directory (through its control socket), or on the store file when none runs. It says which on
stderr. Reference: README.md, sections CLI and Configuration.`,
  );

program
  .command('serve')
  .description('run the provider (settings from config/ and env; see config/default.yaml)')
  .option('--workers <n>', 'worker processes sharing the port (default: the workers setting)')
  .action(run);

const clients = program.command('clients').description('manage OAuth clients kept in the store');

clients
  .command('add')
  .description('register a client and print it as JSON (a generated secret is shown only this once)')
  .requiredOption('--client-id <id>', 'the client_id')
  .option('--secret <secret>', 'use this client secret (at least 32 characters) instead of generating one')
  .option('--public', 'a public client (native or browser app): no secret, PKCE only')
  .option('--redirect-uri <uri>', 'a redirect URI, exact (repeat for several): needed for the code flow, not for client_credentials or --device', collect)
  .option('--post-logout-redirect-uri <uri>', 'where RP-initiated logout may return (repeat)', collect)
  .option('--grant-type <type>', 'authorization_code, refresh_token, client_credentials, device_code (repeat)', collect)
  .option('--device', 'a device or command-line tool signing people in with a code (RFC 8628): native, public unless --secret or --auth-method, grant types device_code and refresh_token')
  .option('--native', 'a desktop or mobile app (application_type native, RFC 8252): custom-scheme (com.example.app:/callback) and loopback redirect URIs, public unless --secret or --auth-method')
  .option('--scope <scope>', 'scopes the client may request (repeat, or space-separated)', collect)
  .option('--name <name>', 'the name shown to people on the consent page')
  .addOption(
    new Option('--auth-method <method>', 'token endpoint authentication').choices([
      'client_secret_basic',
      'client_secret_post',
      'private_key_jwt',
      'none',
    ]),
  )
  .option('--jwks-uri <uri>', 'for private_key_jwt: where the client publishes its keys')
  .option('--backchannel-logout-uri <uri>', 'where a signed logout token is posted when the person signs out elsewhere')
  .option('--require-par', 'its authorization requests must be pushed first (RFC 9126 require_pushed_authorization_requests)')
  .option('--dpop-bound-access-tokens', 'its tokens must be DPoP-bound: every token request needs a DPoP proof (RFC 9449)')
  .option('--require-mfa', "its people must sign in with a second factor (a passkey, or a password and a code)")
  .action(run);

clients
  .command('update <client_id>')
  .description("change a stored client's PAR, DPoP and second-factor requirements (the rest of its metadata stays); prints it without its secret")
  .option('--require-par', 'its authorization requests must be pushed first (RFC 9126)')
  .option('--no-require-par', 'pushing authorization requests is optional for it (unless par.required)')
  .option('--dpop-bound-access-tokens', 'every token request needs a DPoP proof; its tokens are DPoP-bound (RFC 9449)')
  .option('--no-dpop-bound-access-tokens', 'DPoP is optional for it')
  .option('--require-mfa', 'its people must sign in with a second factor')
  .option('--no-require-mfa', 'a password alone is enough again (unless accounts.mfa.required)')
  .action(run);

clients
  .command('rotate-secret <client_id>')
  .description("give a stored client a new secret and print it as JSON (shown only this once); the old one keeps working for --grace seconds")
  .option('--grace <seconds>', 'how long the old secret keeps working: 0 when it leaked (it stops at once, and the tokens the client got for itself end); default and most: registration.secretRotationGrace', graceSeconds)
  .action(run);

clients
  .command('list')
  .description('list stored clients (secrets are not shown)')
  .action(run);

clients
  .command('remove <client_id>')
  .description('delete a stored client: its grants, refresh tokens and access tokens (opaque and JWT) stop working')
  .action(run);

const apis = program.command('apis').description('APIs (resource servers) and what operators grant clients at them, kept in the store');

apis
  .command('list')
  .description('list APIs: built in (admin API, revocation feed), from configuration, and stored')
  .action(run);

apis
  .command('add <identifier>')
  .description('register an API by its identifier (the aud of its tokens); no client gets its scopes until granted')
  .option('--scope <scope>', 'a scope the API defines (repeat, or space-separated)', collect)
  .addOption(new Option('--format <format>', 'access token format').choices(['jwt', 'opaque']).default('jwt'))
  .option('--access-token-ttl <seconds>', 'lifetime of its access tokens (at most ttl.apiAccessTokenMax)')
  .action(run);

apis
  .command('remove <identifier>')
  .description('remove a stored API and every grant at it')
  .action(run);

apis
  .command('grants')
  .description('show what a client is granted, per API')
  .requiredOption('--client <client_id>', 'the client')
  .action(run);

apis
  .command('grant')
  .description("grant a client an API's scopes for client_credentials (adds to what it holds there)")
  .requiredOption('--client <client_id>', 'the client (a confidential one)')
  .requiredOption('--api <identifier>', 'the API')
  .option('--scope <scope>', 'a scope of the API (repeat, or space-separated)', collect)
  .option('--introspect', 'the client serves as this API: it may introspect tokens meant for it')
  .option('--default', "client_credentials without resource is for this API (the client's default audience)")
  .action(run);

apis
  .command('revoke')
  .description("revoke scopes of a client's grant at an API, or (without --scope) the whole grant")
  .requiredOption('--client <client_id>', 'the client')
  .requiredOption('--api <identifier>', 'the API')
  .option('--scope <scope>', 'only this scope (repeat, or space-separated)', collect)
  .action(run);

const registration = program.command('registration').description('dynamic client registration (RFC 7591)');
const registrationTokens = registration.command('token').description('initial access tokens');
registrationTokens
  .command('create')
  .description('create an initial access token that lets a developer register one client; prints it once')
  .option('--expires-in <seconds>', 'lifetime in seconds, at most 30 days (default: registration.initialAccessTokenTTL)', initialAccessTokenSeconds)
  .action(run);

registrationTokens
  .command('list')
  .description('the initial access tokens that may still register a client: their ids and expiry (epoch seconds), never the tokens')
  .action(run);

registrationTokens
  .command('revoke <token-or-id>')
  .description('revoke an initial access token (a leaked one), given the token or its id: /reg refuses it from now on')
  .action(run);

const keys = program.command('keys').description('manage signing keys (next → current → retired → removed)');

keys
  .command('list')
  .description('list signing keys: kid, state and dates (made, current since, retired, when the schedule moves them)')
  .action(run);

keys
  .command('rotate')
  .description('make the next key current now (once it has been published for keys.publishLead) and publish a new next key')
  .option('--now', 'do not wait for the publish lead, only until every server publishes the next key (keys.refreshInterval; the old key stays published and trusted; for a compromised key use `keys revoke`)')
  .option('--revoke-current', 'with --now: the current key is compromised, revoke it (the same as `keys revoke <current kid>`)')
  .action(run);

keys
  .command('revoke <kid...>')
  .description(
    'a compromised signing key: remove it from the JWKS and from verification now, refuse every token it signed ' +
      '(revocation list and feed); if it was the current key, the next key signs now',
  )
  .action(run);

const grants = program.command('grants').description("revoke people's grants to clients, with every token issued under them");

grants
  .command('revoke')
  .description(
    'revoke every grant of a user, of a client, or of a user to a client: refresh tokens, opaque and JWT access tokens stop working, ' +
      'and the consents they were given under are forgotten (the app must ask the person again)',
  )
  .option('--user <username-or-sub>', 'the grants this person has given')
  .option('--client <client_id>', 'the grants this client holds')
  .action(run);

const users = program.command('users').description('manage user accounts');

/**
 * `--password x`, the flag a newcomer tries first: taken only to be refused with the way that is
 * taken (commander said "unknown option"), without repeating the value (cli-actions.ts).
 */
const passwordOnCommandLine = new Option('--password <password>').hideHelp();

users
  .command('add <username>')
  .description('create a user; the password is read from standard input')
  // Checked in the action, not as commander's requiredOption: that one was reported before a
  // missing username, so `latchkey users add` alone asked for the flag instead of the name.
  .option('--password-stdin', 'read the password from standard input (required when it is piped; at a terminal it is asked for)')
  .addOption(passwordOnCommandLine)
  .option('--email <email>', 'email address')
  .option('--email-verified', 'mark the email address (--email) as verified')
  .option('--name <name>', 'full name')
  .option('--given-name <name>', 'given name')
  .option('--family-name <name>', 'family name')
  .option('--locale <locale>', 'BCP 47 locale, e.g. en-GB')
  .action(run);

users
  .command('list')
  .description('list users')
  .action(run);

users
  .command('passwd <username>')
  .description("set a user's password, read from standard input; their sessions end, every grant they have given is revoked and their consents forgotten")
  .option('--password-stdin', 'read the password from standard input (required when it is piped; at a terminal it is asked for)')
  .addOption(passwordOnCommandLine)
  .option('--keep-sessions', 'leave their sessions, grants and consents alone (the old password is not thought to have leaked)')
  .action(run);

for (const [name, disabled] of [
  ['disable', true],
  ['enable', false],
] as const) {
  users
    .command(`${name} <username>`)
    .description(disabled ? 'stop a user from signing in, end their sessions, revoke their grants and tokens and forget their consents' : 'allow a disabled user to sign in again')
    .action(run);
}

users
  .command('remove <username>')
  .description('delete a user, end their sessions, revoke their grants and tokens and remove the apps they registered on the developer page')
  .option('--keep-apps', 'leave the apps they registered on the developer page working (they serve others): no one manages them then but an operator')
  .action(run);

const upstreams = program.command('upstreams').description('upstream OpenID Connect providers people may sign in with, kept in the store');

upstreams
  .command('add')
  .description('add an upstream provider; its client secret is read from standard input')
  .requiredOption('--id <id>', 'short name: in its callback URL <issuer>/upstream/<id>/callback, the upstream request parameter and the idp claim')
  .requiredOption('--issuer <url>', "the upstream's issuer (discovered at <issuer>/.well-known/openid-configuration)")
  .requiredOption('--client-id <id>', "Latchkey's client_id at the upstream")
  .requiredOption('--client-secret-stdin', "read Latchkey's client secret at the upstream from standard input")
  .option('--scope <scope>', 'scopes asked of the upstream', 'openid email profile')
  .option('--display-name <name>', 'shown on the login page: "Continue with <name>"')
  .option('--link-by-email', 'offer a first sign-in the local account with the same email (when the upstream says email_verified), linked once the person signs in to that account')
  .option('--end-session', "signing out at Latchkey also ends the upstream session (when it has an end_session_endpoint)")
  .option('--claim <mapping...>', 'read one of our claims from another upstream claim, e.g. --claim name=display_name')
  .option('--domain <domain...>', 'email domains of its people: a login_hint at one of them goes straight to this upstream, and only addresses at them are taken as verified')
  .action(run);

upstreams
  .command('list')
  .description('list upstream providers, without secrets')
  .action(run);

upstreams
  .command('remove <id>')
  .description('remove an upstream provider: the sessions it signed in end, with their grants and tokens, and the grants made with a sign-in through it whose session is gone (accounts it made stay)')
  .action(run);

const mfa = users.command('mfa').description("a person's second factors: passkeys, authenticator app, recovery codes");

mfa
  .command('list <username>')
  .description('what second factors a person has (names and dates, never a secret)')
  .action(run);

mfa
  .command('reset <username>')
  .description('remove every second factor of a person (e.g. a lost phone), ending the sessions signed in with one: they sign in with their password and set one up again')
  .action(run);

/** `users add`, for "see latchkey users add --help". */
function names(command: Command): string {
  const path: string[] = [];
  for (let at: Command | null = command; at?.parent; at = at.parent) path.unshift(at.name());
  return path.join(' ');
}

/** The command line as typed after the command's own words, `dashed` moved behind "--" and the options kept. */
function withValueLast(path: string, dashed: string): string {
  const rest = process.argv.slice(2 + (path ? path.split(' ').length : 0)).filter((word) => word !== dashed);
  return [...rest, '--', dashed].join(' ');
}

/**
 * `serve --port 3001`: the server's settings are environment variables (or config files), not
 * options; the hint names the one the option was meant to be, e.g. `PORT=3001 latchkey serve`.
 */
function settingHint(path: string, text: string): string {
  const option = /^unknown option '--([a-z][a-z0-9-]*)(?:=(.*))?'/.exec(text);
  if (path !== 'serve' || !option) return '';
  const name = option[1]!.replace(/-/g, '_').toUpperCase();
  const { envName, settings } = settingsModule();
  if (!settings().some((setting) => envName(setting.path) === name)) return '';
  // The value typed, when it is plain (a port, a level); not a URL or a secret, which may hold credentials.
  const value = option[2] ?? process.argv[process.argv.indexOf(`--${option[1]}`) + 1];
  const shown = value && /^[\w.]+$/.test(value) && !/KEYS|SECRET/.test(name) ? value : '…';
  return `; settings are environment variables: ${name}=${shown} latchkey serve (README, Configuration)`;
}

/**
 * `clients remove a b`: the command's one argument, given as several words, shown quoted as one,
 * with the options typed (a secret's value as …). Empty unless the command takes one argument and
 * got several plain words. `users add Bob Smith` (the quick start's "users add <your name>", tenth
 * newcomer pass) is told how without its words: the second may be a password (h8, 2026-12-07).
 */
function quotedHint(command: Command, path: string, text: string): string {
  if (!/^too many arguments for '[^']+'\. Expected 1 argument but got \d+$/.test(text)) return '';
  // A command that reads a password (users add, users passwd): a word after the username may be the
  // password typed as an argument, which is not written back (as --password's value is not), nor
  // quoted into a username to copy (`users add 'eve hunter2…'` made a user named with it).
  if (command.options.some((option) => option.long === '--password-stdin')) {
    return `; a username that holds a space is quoted as one, as in latchkey ${path} 'Ada Lovelace' --password-stdin, and a password is not taken on the command line (shell history, ps): pipe it to --password-stdin`;
  }
  // Nor a credential given as the argument (registration token revoke <token-or-id>, pasted with its "Bearer ").
  if (command.registeredArguments.some((argument) => /token|secret|password/i.test(argument.name()))) return '';
  const rest = process.argv.slice(2 + (path ? path.split(' ').length : 0));
  const words: string[] = [];
  const options: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const word = rest[i]!;
    if (!word.startsWith('-')) {
      words.push(word);
      continue;
    }
    const [flag, inline] = word.split(/=(.*)/s);
    const option = command.options.find((each) => each.long === flag || each.short === flag);
    const secret = /secret|password/.test(flag!);
    if (inline !== undefined) options.push(`${flag}=${secret ? '…' : inline}`);
    else options.push(word);
    if (inline === undefined && option && (option.required || option.optional) && i + 1 < rest.length) options.push(secret ? '…' : rest[++i]!);
  }
  if (words.length < 2 || words.some((word) => word.includes("'"))) return '';
  return `; an argument that holds a space is quoted: latchkey ${path} '${words.join(' ')}'${options.length ? ` ${options.join(' ')}` : ''}`;
}

const APPS = 'an app is a client here: latchkey clients add --client-id ID --redirect-uri URI (clients list, clients remove)';
const TOKENS = "a person's or a client's tokens end with latchkey grants revoke --user USERNAME or --client ID; one token is revoked by its client at the revocation endpoint (RFC 7009, /token/revocation)";
const PEOPLE = 'people are users here: latchkey users add USERNAME (users list, users disable)';
const SETTINGS = 'settings are config/default.yaml, config/<NODE_ENV>.yaml, CONFIG_FILE and environment variables, read at start (README, Configuration)';
/**
 * Words a newcomer types for what the CLI names otherwise, with the command that does it: commander's
 * nearest spelling sent `apps` to `apis` and `tokens` to `keys` (newcomer pass).
 */
const NEWCOMER_WORDS = new Map<string, string>([
  ...['app', 'apps', 'application', 'applications'].map((word) => [word, APPS] as const),
  ...['token', 'tokens', 'revoke'].map((word) => [word, TOKENS] as const),
  ...['people', 'person', 'account', 'accounts'].map((word) => [word, PEOPLE] as const),
  ...['start', 'run'].map((word) => [word, 'the server is latchkey serve (npm start in a checkout)'] as const),
  ['rotate', "latchkey keys rotate rotates the signing keys, latchkey clients rotate-secret ID a client's secret"],
  ...['config', 'configure', 'settings'].map((word) => [word, SETTINGS] as const),
]);

/**
 * Verbs other tools use for one of ours: `clients create` was told "did you mean update?", `clients
 * rotate` the same. Each: our commands' names that may be meant (the first a group has), and the
 * words. Only the first list names a command: `keys rotate` (the signing keys) is no client secret's
 * rotation, and `keys new-secret` was told "did you mean latchkey keys rotate?" (h13's review).
 */
const SAME_VERBS: readonly (readonly [readonly string[], readonly string[]])[] = [
  [['add', 'create'], ['add', 'create', 'new', 'register', 'make']],
  [['remove'], ['remove', 'delete', 'rm', 'del', 'destroy']],
  [['list'], ['list', 'ls', 'show', 'get', 'all']],
  [['passwd'], ['passwd', 'password', 'reset-password', 'set-password']],
  [['rotate-secret'], ['rotate-secret', 'rotate', 'secret', 'reset-secret', 'new-secret']],
];

/** The subcommand of `command` (at `path`) that `word` is another tool's verb for, as a line's end. */
function meantSubcommand(command: Command, path: string, word: string): string | undefined {
  const lower = word.toLowerCase();
  const own = new Set(command.commands.map((sub) => sub.name()));
  for (const [names, verbs] of SAME_VERBS) {
    const ours = names.find((name) => own.has(name));
    if (ours && ours !== lower && verbs.includes(lower)) return `did you mean latchkey ${path} ${ours}?`;
  }
  // The ring makes its keys itself: a new one is published by a rotation.
  if (path === 'keys' && ['add', 'create', 'new', 'generate', 'make'].includes(lower)) return 'a new signing key is made by latchkey keys rotate (the next key signs, and a new next key is published)';
  return undefined;
}

// Usage errors are one line that ends with where to read more, instead of the whole help.
function oneLineErrors(command: Command): void {
  command.configureOutput({
    outputError: (message, write) => {
      const path = names(command);
      const unknown = /^error: unknown command '([^']+)'/.exec(message.trim())?.[1];
      const meant = unknown === undefined ? undefined : path ? meantSubcommand(command, path, unknown) : NEWCOMER_WORDS.get(unknown.toLowerCase());
      if (meant) return write(`latchkey: unknown command '${unknown}'; ${meant}; see latchkey ${path ? `${path} ` : ''}--help\n`);
      // Commander puts its suggestion on a line of its own ("\n(Did you mean users?)"): kept, on the one line.
      const text = message.trim().replace(/^error: /, '').replace(/\s*\n\s*\(Did you mean /, ' (did you mean ').replace(/\s*\n\s*/g, ' ').replace(/\.$/, '');
      // A kid (base64url), or a client_id an operator chose or registered earlier, may start with "-": as an argument it reads as an option.
      const dashed = /^unknown option '(-[^-].+)'$/.exec(text)?.[1];
      const hint = dashed ? `; a value that starts with "-" goes after "--": latchkey ${path} ${withValueLast(path, dashed)}` : settingHint(path, text) || quotedHint(command, path, text);
      // An unknown --option=value is named without its value, which may be a secret (--keys-secrets=…) or a URL with one.
      const shown = text.replace(/^(unknown option '--[^=']*)=[^']*'/, "$1=…'");
      write(`latchkey: ${shown}${hint}; see latchkey ${path ? `${path} ` : ''}--help\n`);
    },
  });
  for (const sub of command.commands) oneLineErrors(sub);
}
oneLineErrors(program);
oneValueEach(program);

await program.parseAsync();
