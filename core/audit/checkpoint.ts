import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { parseStateJson, readFileIfExists, writeFileAtomic } from '../state/files.js';

/**
 * Signed checkpoints (in the spirit of C2SP tlog-checkpoint): an Ed25519 signature over the source, the segment,
 * the last sequence number, the chain hash at it and the time. A hash chain shows edits inside it; only a
 * checkpoint held somewhere else shows that records were cut off the end, so checkpoints go to every sink too.
 */
export interface Checkpoint {
  readonly v: 1;
  readonly type: 'checkpoint';
  readonly source: string;
  readonly segment: string;
  readonly seq: number;
  readonly hash: string;
  readonly time: string;
  readonly kid: string;
  readonly sig: string;
}

export const checkpointMessage = (c: Pick<Checkpoint, 'source' | 'segment' | 'seq' | 'hash' | 'time'>): string =>
  `gatehouse-audit-checkpoint/v1\n${c.source}\n${c.segment}\n${c.seq}\n${c.hash}\n${c.time}\n`;

export interface CheckpointKey {
  readonly kid: string;
  readonly privateKey: KeyObject;
  readonly publicKeyPem: string;
}

interface KeyFile {
  version: 1;
  kid: string;
  private_pem: string;
  public_pem: string;
}

const isKeyFile = (v: unknown): v is KeyFile => typeof v === 'object' && v !== null && (v as KeyFile).version === 1 && typeof (v as KeyFile).private_pem === 'string';

/** The audit signing key (`audit/checkpoint-key.json`, 0600), separate from token keys: it must outlive them. */
export async function loadOrCreateCheckpointKey(auditDir: string): Promise<CheckpointKey> {
  const file = join(auditDir, 'checkpoint-key.json');
  const text = await readFileIfExists(file);
  if (text !== null) {
    const k = parseStateJson(file, text, isKeyFile);
    return { kid: k.kid, privateKey: createPrivateKey(k.private_pem), publicKeyPem: k.public_pem };
  }
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const public_pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const kid = createPublicKey(public_pem).export({ format: 'jwk' }).x as string;
  const body: KeyFile = { version: 1, kid, private_pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), public_pem };
  await writeFileAtomic(file, `${JSON.stringify(body, null, 2)}\n`);
  // The public half beside it, for verifiers that must not read the private key.
  await writeFileAtomic(join(auditDir, 'checkpoint-key.pub.pem'), public_pem, 0o644);
  return { kid, privateKey, publicKeyPem: public_pem };
}

export function signCheckpoint(key: CheckpointKey, fields: Pick<Checkpoint, 'source' | 'segment' | 'seq' | 'hash' | 'time'>): Checkpoint {
  const sig = sign(null, Buffer.from(checkpointMessage(fields)), key.privateKey).toString('base64url');
  return { v: 1, type: 'checkpoint', ...fields, kid: key.kid, sig };
}

export function verifyCheckpoint(publicKeyPem: string, c: Checkpoint): boolean {
  try {
    return verify(null, Buffer.from(checkpointMessage(c)), createPublicKey(publicKeyPem), Buffer.from(c.sig, 'base64url'));
  } catch {
    return false;
  }
}
