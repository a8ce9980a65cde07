/**
 * htpasswd files for nginx's `auth_basic_user_file`: bcrypt for passwords a person chose, and
 * nginx's own salted SHA-1 (`{SSHA}`) for the long random passwords Berth generates.
 *
 * Lines use the `$2y$` prefix: Apache's `htpasswd`, glibc/libxcrypt and musl `crypt(3)` (what
 * nginx calls) and Go's bcrypt all accept it. bcryptjs emits `$2b$`; `$2a$`, `$2b$` and `$2y$`
 * hash the same way for every password this module accepts (≤ 72 bytes), so only the prefix changes.
 *
 * A random salt changes the file on every run (a diff in every `pulumi up`); pass a salt from
 * {@link bcryptSaltFrom} with a secret seed kept in state to make the line stable.
 */
import { createHash, createHmac } from "node:crypto";
import bcrypt from "bcryptjs";
import { RenderError, compareCodePoints, joinLines } from "./common.ts";

const R = "htpasswd";

export const BCRYPT_DEFAULT_COST = 10;

/**
 * Passwords Berth generates (32 random letters and digits, about 190 bits) are hashed with
 * {@link sshaEntry}, not bcrypt: nginx checks the hash on every request (`auth_basic` keeps no
 * cache), and a work factor only slows down guessing a password that can be guessed. No work factor
 * makes 2^190 guesses feasible or infeasible; bcrypt at cost 5 cost nginx about 2.7 ms of CPU per
 * request, a third of its CPU on a push of small images (docs/performance.md). Passwords a user
 * provides keep bcrypt at {@link BCRYPT_DEFAULT_COST}.
 */
export const GENERATED_PASSWORD_MIN_LENGTH = 24;

export interface HtpasswdOptions {
  /** bcrypt cost (log2 rounds), 4..31. Default 10. Must match the salt's cost when a salt is given. */
  cost?: number;
  /**
   * A bcrypt salt: either the full form `$2b$10$` + 22 characters (as {@link bcryptSaltFrom}
   * returns) or the 22 characters alone. Omitted: a random salt (non-deterministic output).
   */
  salt?: string;
}

const SALT_FULL = /^\$2[abxy]\$(\d\d)\$([./A-Za-z0-9]{22})$/;
const SALT_RAW = /^[./A-Za-z0-9]{22}$/;

function checkCost(cost: number): number {
  if (!Number.isInteger(cost) || cost < 4 || cost > 31) {
    throw new RenderError(R, "cost", `${String(cost)} must be an integer in 4..31`);
  }
  return cost;
}

/** Rejects user names that would corrupt an htpasswd file or never match a Basic auth header. */
export function checkHtpasswdUser(user: string): string {
  if (user.length === 0) throw new RenderError(R, "user", "must not be empty");
  if (user.includes(":")) throw new RenderError(R, "user", `${JSON.stringify(user)} must not contain ":"`);
  // eslint-disable-next-line no-control-regex
  if (/[\s\u0000-\u001f\u007f]/.test(user)) {
    throw new RenderError(
      R,
      "user",
      `${JSON.stringify(user)} must not contain whitespace or control characters`,
    );
  }
  if (user.length > 255) throw new RenderError(R, "user", "must be at most 255 characters");
  return user;
}

/**
 * A bcrypt salt derived from a secret seed: HMAC-SHA256(seed, "berth/htpasswd-salt/v1"), first 16
 * bytes, in bcrypt's base64 alphabet. Returns the full `$2b$<cost>$<22 chars>` form.
 *
 * Use a different seed per user (e.g. `${secret}:${user}`) so two users with the same password do
 * not get the same hash.
 */
export function bcryptSaltFrom(seed: string, cost: number = BCRYPT_DEFAULT_COST): string {
  checkCost(cost);
  if (seed.length === 0) throw new RenderError(R, "seed", "must not be empty");
  const digest = createHmac("sha256", seed).update("berth/htpasswd-salt/v1").digest();
  const encoded = bcrypt.encodeBase64([...digest.subarray(0, 16)], 16);
  return `$2b$${String(cost).padStart(2, "0")}$${encoded}`;
}

/** `user:$2y$...` — one htpasswd line (without newline). */
export function htpasswdEntry(user: string, password: string, options: HtpasswdOptions = {}): string {
  checkHtpasswdUser(user);
  if (password.length === 0) throw new RenderError(R, "password", `empty password for user ${user}`);
  if (bcrypt.truncates(password)) {
    throw new RenderError(R, "password", `password for user ${user} is longer than bcrypt's 72 bytes`);
  }
  let salt: string;
  if (options.salt === undefined) {
    salt = bcrypt.genSaltSync(checkCost(options.cost ?? BCRYPT_DEFAULT_COST));
  } else if (SALT_RAW.test(options.salt)) {
    const cost = checkCost(options.cost ?? BCRYPT_DEFAULT_COST);
    salt = `$2b$${String(cost).padStart(2, "0")}$${options.salt}`;
  } else {
    const m = SALT_FULL.exec(options.salt);
    if (!m || m[1] === undefined || m[2] === undefined) {
      throw new RenderError(
        R,
        "salt",
        "must be $2b$NN$ followed by 22 bcrypt-base64 characters, or the 22 alone",
      );
    }
    const saltCost = checkCost(Number(m[1]));
    if (options.cost !== undefined && options.cost !== saltCost) {
      throw new RenderError(R, "cost", `${options.cost} does not match the salt's cost ${saltCost}`);
    }
    salt = `$2b$${m[1]}$${m[2]}`;
  }
  const hash = bcrypt.hashSync(password, salt);
  return `${user}:$2y$${hash.slice(4)}`;
}

/**
 * `user:{SSHA}…`, one htpasswd line for a password Berth generated: base64 of SHA-1(password ‖
 * salt) followed by the salt, the scheme nginx implements itself (`ngx_crypt`, every build, Alpine's
 * included). The 16-byte salt is HMAC-SHA256(seed, "berth/htpasswd-ssha-salt/v1"): stable between
 * runs for one secret seed, and unrelated to the password.
 *
 * Only for long random passwords (at least {@link GENERATED_PASSWORD_MIN_LENGTH} characters): a
 * password a person chose needs bcrypt's work factor, {@link htpasswdEntry}.
 */
export function sshaEntry(user: string, password: string, seed: string): string {
  checkHtpasswdUser(user);
  if (password.length < GENERATED_PASSWORD_MIN_LENGTH) {
    throw new RenderError(
      R,
      "password",
      `the password for user ${user} is shorter than ${GENERATED_PASSWORD_MIN_LENGTH} characters: ` +
        "{SSHA} is only for generated passwords, use htpasswdEntry (bcrypt)",
    );
  }
  if (seed.length === 0) throw new RenderError(R, "seed", "must not be empty");
  const salt = createHmac("sha256", seed).update("berth/htpasswd-ssha-salt/v1").digest().subarray(0, 16);
  const digest = createHash("sha1").update(password, "utf8").update(salt).digest();
  return `${user}:{SSHA}${Buffer.concat([digest, salt]).toString("base64")}`;
}

/** Checks an htpasswd line (bcrypt or `{SSHA}` with a 16-byte salt); returns its user name and hash. */
export function parseHtpasswdLine(line: string): { user: string; hash: string } {
  const colon = line.indexOf(":");
  const user = colon < 0 ? "" : line.slice(0, colon);
  const hash = line.slice(colon + 1);
  checkHtpasswdUser(user);
  if (!/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash) && !/^\{SSHA\}[A-Za-z0-9+/]{48}$/.test(hash)) {
    throw new RenderError(
      R,
      "entries",
      `the entry for ${JSON.stringify(user)} is neither a bcrypt nor a {SSHA} hash`,
    );
  }
  return { user, hash };
}

/** A whole htpasswd file from `htpasswdEntry` lines: sorted by user name, one per line, duplicates refused. */
export function renderHtpasswd(entries: readonly string[]): string {
  const parsed = entries.map(parseHtpasswdLine);
  parsed.sort((a, b) => compareCodePoints(a.user, b.user));
  for (let i = 1; i < parsed.length; i++) {
    if (parsed[i]?.user === parsed[i - 1]?.user) {
      throw new RenderError(R, "entries", `user ${JSON.stringify(parsed[i]?.user)} appears more than once`);
    }
  }
  return parsed.length === 0 ? "" : joinLines(parsed.map((e) => `${e.user}:${e.hash}`));
}
