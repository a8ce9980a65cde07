/**
 * Nova's limit on a server's user data: one source for the host layer (ignition/host.ts, which
 * refuses a larger Ignition), the stack checks (stack/validate.ts) and the policy pack
 * (policy/policies.ts). Pure data with no imports: Pulumi's policy runner loads this file too
 * (ts-node, CommonJS, from policy/), which resolves only extension-less imports.
 */

/** Nova's limit on user data, counted after base64 encoding. */
export const NOVA_USER_DATA_LIMIT_BYTES = 65535;
