/**
 * OpenSSH public key lines (`type base64 [comment]`): the line's shape (`isSshPublicKey`, the
 * schema's `ssh-public-key` format) and what its base64 blob holds (`sshKeyProblem`, the wire
 * format of RFC 4253 §6.6, RFC 5656 §3.1, RFC 8709 §4 and OpenSSH's PROTOCOL.u2f).
 */
const KEY_TYPES = new Set([
  "ssh-ed25519",
  "ssh-rsa",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "sk-ssh-ed25519@openssh.com",
  "sk-ecdsa-sha2-nistp256@openssh.com",
]);

/** The smallest RSA modulus Berth accepts, in bits (OpenSSH refuses smaller ones since 8.8/9.x too). */
export const MIN_RSA_BITS = 2048;

const LINE = /^(\S+) ([A-Za-z0-9+/]+={0,2})(?: [^\r\n]*)?$/;

export function isSshPublicKey(line: string): boolean {
  const m = LINE.exec(line);
  if (!m || m[1] === undefined || m[2] === undefined || !KEY_TYPES.has(m[1])) return false;
  const blob = Buffer.from(m[2], "base64");
  if (blob.length < 4 + m[1].length) return false;
  const len = blob.readUInt32BE(0);
  return len === m[1].length && blob.subarray(4, 4 + len).toString("latin1") === m[1];
}

/** Reads the length-prefixed fields of an SSH wire blob; `undefined` when one runs past the end. */
class Reader {
  private at = 0;
  constructor(private readonly blob: Buffer) {}
  field(): Buffer | undefined {
    if (this.at + 4 > this.blob.length) return undefined;
    const len = this.blob.readUInt32BE(this.at);
    if (this.at + 4 + len > this.blob.length) return undefined;
    const out = this.blob.subarray(this.at + 4, this.at + 4 + len);
    this.at += 4 + len;
    return out;
  }
  get done(): boolean {
    return this.at === this.blob.length;
  }
}

/** Bits of an SSH mpint (big-endian, two's complement; a leading 0 byte keeps it positive). */
function mpintBits(v: Buffer): number {
  let i = 0;
  while (i < v.length && v[i] === 0) i++;
  if (i === v.length) return 0;
  return (v.length - i - 1) * 8 + (32 - Math.clz32(v[i] as number));
}

const CURVES: Record<string, { id: string; point: number }> = {
  "ecdsa-sha2-nistp256": { id: "nistp256", point: 65 },
  "ecdsa-sha2-nistp384": { id: "nistp384", point: 97 },
  "ecdsa-sha2-nistp521": { id: "nistp521", point: 133 },
  "sk-ecdsa-sha2-nistp256@openssh.com": { id: "nistp256", point: 65 },
};

/**
 * What is wrong with the key inside a line `isSshPublicKey` accepts, or `undefined` when it is a
 * whole key: the blob must hold every field of its type and nothing more, and an RSA modulus must
 * have at least {@link MIN_RSA_BITS} bits. (A line with only the type in its blob would install
 * nothing usable and lock the operator out.)
 */
export function sshKeyProblem(line: string): string | undefined {
  const m = LINE.exec(line);
  if (!m || m[1] === undefined || m[2] === undefined) return undefined; // the format check reports it
  const type = m[1];
  const r = new Reader(Buffer.from(m[2], "base64"));
  r.field(); // the type, checked by isSshPublicKey
  const truncated = `holds only part of a ${type} key (the base64 blob ends early); paste the whole line of the .pub file`;
  if (type === "ssh-ed25519" || type === "sk-ssh-ed25519@openssh.com") {
    const key = r.field();
    if (!key) return truncated;
    if (key.length !== 32)
      return `its ed25519 key is ${key.length} bytes, not 32; paste the whole line of the .pub file`;
    if (type.startsWith("sk-") && !r.field()) return truncated;
  } else if (type === "ssh-rsa") {
    const e = r.field();
    const n = r.field();
    if (!e || !n) return truncated;
    const bits = mpintBits(n);
    if (bits < MIN_RSA_BITS)
      return `is a ${bits}-bit RSA key; RSA keys need at least ${MIN_RSA_BITS} bits: use an ed25519 key (ssh-keygen -t ed25519) or ssh-keygen -t rsa -b 4096`;
  } else {
    const curve = CURVES[type];
    if (!curve) return undefined;
    const id = r.field();
    const point = r.field();
    if (!id || !point) return truncated;
    if (id.toString("latin1") !== curve.id)
      return `names curve ${JSON.stringify(id.toString("latin1"))} but its type is ${type}`;
    if (point.length !== curve.point || point[0] !== 4)
      return `its ${curve.id} public point is malformed; paste the whole line of the .pub file`;
    if (type.startsWith("sk-") && !r.field()) return truncated;
  }
  if (!r.done)
    return `has bytes after the ${type} key in its base64 blob; paste the line of the .pub file as is`;
  return undefined;
}
