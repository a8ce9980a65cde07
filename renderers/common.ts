/**
 * Shared validation helpers for the config-file renderers. Everything here is pure: the renderers
 * refuse any value that could break out of the token it is written into (a newline, a `;`, a
 * quote, …) instead of trying to escape it, so a rendered file never means something other than
 * what its input says.
 */
import { isIPv4, isIPv6 } from "node:net";

/** A renderer input that cannot be written safely. `field` names the input, as the caller spells it. */
export class RenderError extends Error {
  readonly renderer: string;
  readonly field: string;

  constructor(renderer: string, field: string, message: string) {
    super(`${renderer}: ${field}: ${message}`);
    this.name = "RenderError";
    this.renderer = renderer;
    this.field = field;
  }
}

/**
 * A check that fails only when Berth itself is wrong: everything a user can cause is refused by
 * validation (a ConfigError naming the field, config/errors.ts), so what is left in components and the layers
 * below them are bug checks. Their message says so and what validation should have refused.
 */
export class InternalError extends Error {
  constructor(what: string) {
    super(`bug in Berth: ${what} (validation should have refused this; please report it)`);
    this.name = "InternalError";
  }
}

/** A bug check's error: `throw internalError("...")`. */
export function internalError(what: string): InternalError {
  return new InternalError(what);
}

/** Absolute POSIX path made only of characters that need no quoting in nginx, sshd or dnsmasq files. */
const SAFE_PATH = /^\/[A-Za-z0-9._@+\-/]*$/;

export function checkPath(renderer: string, field: string, value: string): string {
  if (!SAFE_PATH.test(value) || value.includes("/../") || value.endsWith("/..")) {
    throw new RenderError(
      renderer,
      field,
      `${JSON.stringify(value)} must be an absolute path of letters, digits and ._@+-/ (no "..")`,
    );
  }
  return value;
}

/** DNS host name (one or more labels, letters/digits/hyphens, no leading or trailing hyphen). */
const LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;

export function isDnsLabel(value: string): boolean {
  return LABEL.test(value);
}

export function isHostname(value: string): boolean {
  if (value.length === 0 || value.length > 253) return false;
  return value.split(".").every(isDnsLabel);
}

export function checkHostname(renderer: string, field: string, value: string): string {
  if (!isHostname(value)) {
    throw new RenderError(renderer, field, `${JSON.stringify(value)} is not a valid DNS host name`);
  }
  return value;
}

export function checkPort(renderer: string, field: string, value: number): number {
  if (!Number.isInteger(value) || value < 1 || value > 65535) {
    throw new RenderError(renderer, field, `${String(value)} is not a TCP/UDP port (1-65535)`);
  }
  return value;
}

export function checkIntRange(
  renderer: string,
  field: string,
  value: number,
  min: number,
  max: number,
): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RenderError(renderer, field, `${String(value)} must be an integer in ${min}..${max}`);
  }
  return value;
}

export function isIpAddress(value: string): boolean {
  return isIPv4(value) || isIPv6(value);
}

/** `a.b.c.d/n`, `a.b.c.d`, an IPv6 address or `v6/n`. */
export function isCidrOrAddress(value: string): boolean {
  const slash = value.indexOf("/");
  if (slash < 0) return isIpAddress(value);
  const addr = value.slice(0, slash);
  const prefix = value.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefix) || String(Number(prefix)) !== prefix) return false;
  const bits = Number(prefix);
  if (isIPv4(addr)) return bits <= 32;
  if (isIPv6(addr)) return bits <= 128;
  return false;
}

/** `host:port` where host is a DNS name or an IPv4 address (or `[v6]`). */
export function checkHostPort(renderer: string, field: string, value: string): string {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(value);
  const host = m?.[1];
  const port = m?.[2];
  const hostOk =
    host !== undefined &&
    (host.startsWith("[") ? isIPv6(host.slice(1, -1)) : isIPv4(host) || isHostname(host));
  if (!hostOk || port === undefined || Number(port) < 1 || Number(port) > 65535) {
    throw new RenderError(
      renderer,
      field,
      `${JSON.stringify(value)} must be host:port (e.g. "registry:5000")`,
    );
  }
  return value;
}

/** Code-point order, independent of the locale the program runs under. */
export function compareCodePoints(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Joins lines with "\n" and ends the file with exactly one newline. */
export function joinLines(lines: readonly string[]): string {
  return `${lines.join("\n")}\n`;
}
