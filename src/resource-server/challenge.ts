/**
 * The one WWW-Authenticate builder of latchkey/resource-server, for ResourceServer.challenge
 * (RFC 6750 §3, RFC 9449 §7.1) and ProtectedResource's 401 (RFC 9728 §5.1).
 *
 * One challenge per accepted scheme: `Bearer` unless bearer tokens are refused, `DPoP` (with
 * `algs`) when DPoP is accepted. Each carries `resource_metadata` (RFC 9728 §5.1 lets it go with
 * any scheme, so a client that only speaks DPoP finds the metadata too) and the `scope` to ask
 * for; only the failing scheme's carries `error` and `error_description`. A failed DPoP
 * presentation gets the DPoP challenge alone (RFC 9449 §7.1): its token is bound, a bearer retry
 * cannot succeed. No error without a token (RFC 6750 §3.1).
 *
 * No imports: protected-resource.ts, which loads no dependency, uses it too.
 */
export interface ChallengeParameters {
  /** RFC 6750 §3.1 / RFC 9449 §7.1 error code; absent when the request had no token. */
  readonly error?: string;
  readonly description?: string;
  /** The scheme the failure belongs to. Default `Bearer`. */
  readonly scheme?: 'Bearer' | 'DPoP';
  /** The DPoP algorithms accepted; absent or empty when DPoP is not. */
  readonly dpopAlgorithms?: readonly string[];
  /** False when only DPoP-bound tokens are accepted (`dpop_bound_access_tokens_required`). Default true. */
  readonly bearer?: boolean;
  /** The RFC 9728 metadata URL. */
  readonly resourceMetadata?: string;
  readonly scope?: readonly string[];
}

/** RFC 6750 §3: a quoted-string value may hold only %x20-21 / %x23-5B / %x5D-7E. */
function quoted(value: string): string {
  return `"${value.replace(/[^\x20\x21\x23-\x5b\x5d-\x7e]/g, ' ')}"`;
}

export function wwwAuthenticate({ error, description, scheme = 'Bearer', dpopAlgorithms = [], bearer = true, resourceMetadata, scope }: ChallengeParameters): string {
  const metadata = resourceMetadata === undefined ? [] : [`resource_metadata=${quoted(resourceMetadata)}`];
  const failure = error ? [`error=${quoted(error)}`, ...(description ? [`error_description=${quoted(description)}`] : [])] : [];
  const scopes = scope?.length ? [`scope=${quoted(scope.join(' '))}`] : [];
  const dpopFailed = failure.length > 0 && scheme === 'DPoP';
  const challenges: string[] = [];
  if (bearer && !dpopFailed) challenges.push(render('Bearer', [...metadata, ...(scheme === 'Bearer' ? failure : []), ...scopes]));
  if (dpopAlgorithms.length || dpopFailed || !bearer) {
    const algs = dpopAlgorithms.length ? [`algs=${quoted(dpopAlgorithms.join(' '))}`] : [];
    challenges.push(render('DPoP', [...metadata, ...(scheme === 'DPoP' ? failure : []), ...scopes, ...algs]));
  }
  return challenges.join(', ');
}

const render = (scheme: string, params: readonly string[]) => (params.length ? `${scheme} ${params.join(', ')}` : scheme);
