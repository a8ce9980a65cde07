/** PEM text helpers (pure). */

/** A PEM block's BEGIN line for any private key (PKCS#8, RSA, EC, encrypted, OpenSSH). */
export const PRIVATE_KEY_PEM = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/;

/**
 * Only the `CERTIFICATE` blocks of `pem`, in order, each ending with a newline. Whatever else the
 * text carries (above all a private key pasted in with the certificate, as in a combined PEM
 * file) is dropped, so a certificate can be handled as public data.
 */
export function certificateBlocks(pem: string): string {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => `${b}\n`).join("");
}
