/** Checks that a string is one OpenSSH public key line whose base64 blob names the same key type. */
const KEY_TYPES = new Set([
  "ssh-ed25519",
  "ssh-rsa",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "sk-ssh-ed25519@openssh.com",
  "sk-ecdsa-sha2-nistp256@openssh.com",
]);

export function isSshPublicKey(line: string): boolean {
  const m = /^(\S+) ([A-Za-z0-9+/]+={0,2})(?: [^\r\n]*)?$/.exec(line);
  if (!m || m[1] === undefined || m[2] === undefined || !KEY_TYPES.has(m[1])) return false;
  const blob = Buffer.from(m[2], "base64");
  if (blob.length < 4 + m[1].length) return false;
  const len = blob.readUInt32BE(0);
  return len === m[1].length && blob.subarray(4, 4 + len).toString("latin1") === m[1];
}
