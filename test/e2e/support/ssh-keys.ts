/**
 * Real key pairs for the program's `tls.PrivateKey` resources, for runs under Pulumi's mocks that
 * must end in a real system (the mock's keys are PEM-shaped placeholders): {@link realKeyOutputs}
 * is a `runConfig(config, { outputs })` hook that gives every ED25519 and RSA key what the tls
 * provider computes, generated per run with node:crypto: `privateKeyPem` (PKCS#8), `publicKeyPem`,
 * `privateKeyOpenssh` (openssh-key-v1) and `publicKeyOpenssh`. Everything computed from them by the
 * program (the agents' uploaded host keys, `agentKnownHosts`) is then real.
 */
import { generateKeyPairSync, randomInt, type KeyObject } from "node:crypto";

const PRIVATE_KEY = "tls:index/privateKey:PrivateKey";

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const sshString = (data: Buffer | string) => {
  const b = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  return Buffer.concat([u32(b.length), b]);
};
/** SSH mpint of an unsigned big-endian integer (base64url, as JWK has it). */
const mpint = (b64url: string) => {
  let b = Buffer.from(b64url, "base64url");
  while (b.length > 0 && b[0] === 0) b = b.subarray(1);
  if (b.length > 0 && ((b[0] ?? 0) & 0x80) !== 0) b = Buffer.concat([Buffer.alloc(1), b]);
  return sshString(b);
};

interface Jwk {
  kty?: string;
  crv?: string;
  x?: string;
  d?: string;
  n?: string;
  e?: string;
  p?: string;
  q?: string;
  qi?: string;
}

function jwkField(jwk: Jwk, key: keyof Jwk): string {
  const v = jwk[key];
  if (typeof v !== "string") throw new Error(`key export: no ${key}`);
  return v;
}

/** The public key blob and the private part of openssh-key-v1 for a node key pair. */
function opensshParts(privateKey: KeyObject): { type: string; blob: Buffer; secret: Buffer } {
  const jwk = privateKey.export({ format: "jwk" }) as Jwk;
  if (jwk.kty === "OKP" && jwk.crv === "Ed25519") {
    const pub = Buffer.from(jwkField(jwk, "x"), "base64url");
    const seed = Buffer.from(jwkField(jwk, "d"), "base64url");
    const blob = Buffer.concat([sshString("ssh-ed25519"), sshString(pub)]);
    const secret = Buffer.concat([
      sshString("ssh-ed25519"),
      sshString(pub),
      sshString(Buffer.concat([seed, pub])),
    ]);
    return { type: "ssh-ed25519", blob, secret };
  }
  if (jwk.kty === "RSA") {
    const blob = Buffer.concat([sshString("ssh-rsa"), mpint(jwkField(jwk, "e")), mpint(jwkField(jwk, "n"))]);
    const secret = Buffer.concat([
      sshString("ssh-rsa"),
      mpint(jwkField(jwk, "n")),
      mpint(jwkField(jwk, "e")),
      mpint(jwkField(jwk, "d")),
      mpint(jwkField(jwk, "qi")),
      mpint(jwkField(jwk, "p")),
      mpint(jwkField(jwk, "q")),
    ]);
    return { type: "ssh-rsa", blob, secret };
  }
  throw new Error(`no OpenSSH encoding for a ${String(jwk.kty)} key here`);
}

/** An unencrypted openssh-key-v1 private key file (what `ssh-keygen` writes) with `comment`. */
function opensshPrivate(privateKey: KeyObject, comment: string): { privateKey: string; publicKey: string } {
  const { type, blob, secret } = opensshParts(privateKey);
  const check = u32(randomInt(0, 2 ** 32 - 1));
  let inner = Buffer.concat([check, check, secret, sshString(comment)]);
  const pad = (8 - (inner.length % 8)) % 8;
  inner = Buffer.concat([inner, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const file = Buffer.concat([
    Buffer.from("openssh-key-v1\0", "binary"),
    sshString("none"),
    sshString("none"),
    sshString(""),
    u32(1),
    sshString(blob),
    sshString(inner),
  ]);
  const b64 = file.toString("base64").replace(/.{1,70}/g, "$&\n");
  return {
    privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}-----END OPENSSH PRIVATE KEY-----\n`,
    publicKey: `${type} ${blob.toString("base64")}\n`,
  };
}

/** A fresh key pair as the tls provider's PrivateKey outputs. */
export function realPrivateKeyOutputs(algorithm: "ED25519" | "RSA", rsaBits = 2048, comment = "") {
  const { privateKey, publicKey } =
    algorithm === "ED25519"
      ? generateKeyPairSync("ed25519")
      : generateKeyPairSync("rsa", { modulusLength: rsaBits, publicExponent: 65537 });
  const ssh = opensshPrivate(privateKey, comment);
  return {
    privateKeyPem: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
    publicKeyPem: publicKey.export({ format: "pem", type: "spki" }).toString(),
    privateKeyOpenssh: ssh.privateKey,
    publicKeyOpenssh: ssh.publicKey,
  };
}

/**
 * `runConfig` hook: real ED25519 and RSA keys for every `tls.PrivateKey` of those algorithms (others,
 * e.g. ECDSA CA keys, keep the mock's); `made` collects the resource names it generated keys for.
 */
export function realKeyOutputs(made: string[] = []) {
  return (
    type: string,
    name: string,
    inputs: Record<string, unknown>,
  ): Record<string, unknown> | undefined => {
    if (type !== PRIVATE_KEY) return undefined;
    const algorithm = inputs.algorithm;
    if (algorithm !== "ED25519" && algorithm !== "RSA") return undefined;
    made.push(name);
    const bits = typeof inputs.rsaBits === "number" ? inputs.rsaBits : 2048;
    return realPrivateKeyOutputs(algorithm, bits, `berth-e2e ${name}`);
  };
}
