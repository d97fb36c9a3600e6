/**
 * A software authenticator for black-box passkey attacks: P-256 keys, the assertions and "none"
 * registrations it signs (CBOR by hand), and the pages' passkey challenge. Browser tests use
 * Chromium's virtual authenticator instead; these let a test forge what no browser would send.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import type { Page } from './agent.js';
import type { TestServer } from './server.js';

export type SoftPasskey = ReturnType<typeof softPasskey>;

/** A software authenticator's passkey: a P-256 key and its COSE public key. */
export function softPasskey() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' }) as { x: string; y: string };
  const [x, y] = [Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')];
  // COSE_Key {1: 2 (EC2), 3: -7 (ES256), -1: 1 (P-256), -2: x, -3: y}, CBOR by hand.
  const cose = Buffer.concat([Buffer.from([0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20]), x, Buffer.from([0x22, 0x58, 0x20]), y]);
  return { id: randomBytes(16).toString('base64url'), publicKey: cose.toString('base64url'), privateKey };
}

/** Gives person `sub` these software passkeys, as a registration would have (device-bound, counter 0). */
export async function registerSoftPasskeys(server: TestServer, sub: string, ...keys: SoftPasskey[]): Promise<void> {
  for (const key of keys) {
    await server.secondFactors.records.update(sub, (current) => ({
      next: { ...current, passkeys: [...current.passkeys, { id: key.id, publicKey: key.publicKey, counter: 0, name: 'soft', deviceType: 'singleDevice', createdAt: 0 }] },
      result: true,
    }));
  }
}

/**
 * An assertion for `challenge` at `origin`, signed by `key`, naming `userHandle` (none when
 * undefined), with sign counter `counter`; the authenticator's flags (UP|UV, 0x05, unless said) and
 * RP ID (the origin's host unless said).
 */
export function assertion(key: { id: string; privateKey: KeyObject }, origin: string, challenge: string, userHandle: string | undefined, counter: number, { flags = 0x05, rpId = new URL(origin).hostname } = {}) {
  const clientData = Buffer.from(JSON.stringify({ type: 'webauthn.get', challenge, origin, crossOrigin: false }));
  const counterBytes = Buffer.alloc(4);
  counterBytes.writeUInt32BE(counter);
  // rpIdHash, flags, counter.
  const authData = Buffer.concat([createHash('sha256').update(rpId).digest(), Buffer.from([flags]), counterBytes]);
  const signature = sign('sha256', Buffer.concat([authData, createHash('sha256').update(clientData).digest()]), key.privateKey);
  return JSON.stringify({
    id: key.id,
    rawId: key.id,
    type: 'public-key',
    clientExtensionResults: {},
    response: {
      clientDataJSON: clientData.toString('base64url'),
      authenticatorData: authData.toString('base64url'),
      signature: signature.toString('base64url'),
      ...(userHandle !== undefined && { userHandle: Buffer.from(userHandle).toString('base64url') }),
    },
  });
}

/**
 * A registration response ("none" attestation) for `challenge` at `origin`, for the passkey `key`
 * under the credential id `id` (its own unless said, or one an attacker copied from someone else);
 * flags UP|UV|AT (0x45) unless said.
 */
export function attestation(key: { id: string; publicKey: string }, origin: string, challenge: string, { id = key.id, flags = 0x45 } = {}) {
  const clientData = Buffer.from(JSON.stringify({ type: 'webauthn.create', challenge, origin, crossOrigin: false }));
  const credentialId = Buffer.from(id, 'base64url');
  const idLength = Buffer.alloc(2);
  idLength.writeUInt16BE(credentialId.length);
  // rpIdHash, flags, counter 0, AAGUID (zeros), credential id, COSE public key.
  const authData = Buffer.concat([createHash('sha256').update(new URL(origin).hostname).digest(), Buffer.from([flags, 0, 0, 0, 0]), Buffer.alloc(16), idLength, credentialId, Buffer.from(key.publicKey, 'base64url')]);
  if (authData.length >= 256) throw new Error('authData too long for the one-byte CBOR length below');
  // {"fmt": "none", "attStmt": {}, "authData": bytes}.
  const cbor = Buffer.concat([Buffer.from([0xa3, 0x63]), Buffer.from('fmt'), Buffer.from([0x64]), Buffer.from('none'), Buffer.from([0x67]), Buffer.from('attStmt'), Buffer.from([0xa0, 0x68]), Buffer.from('authData'), Buffer.from([0x58, authData.length]), authData]);
  return JSON.stringify({
    id,
    rawId: id,
    type: 'public-key',
    clientExtensionResults: {},
    response: { clientDataJSON: clientData.toString('base64url'), attestationObject: cbor.toString('base64url'), transports: ['internal'] },
  });
}

/** The WebAuthn challenge a page offers (its data-options). */
export const passkeyChallenge = (page: Page) => {
  const options = page.html.match(/data-options="([^"]+)"/)![1]!.replace(/&quot;/g, '"').replace(/&amp;/g, '&');
  return (JSON.parse(options) as { challenge: string }).challenge;
};

export const isSecondFactor = (page: Page) => page.url.includes('/interaction/') && page.html.includes('/second-factor');
