import { writeFileSync } from "node:fs";
import { join } from "node:path";
import bcrypt from "bcryptjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RenderError } from "../../renderers/common.ts";
import {
  bcryptSaltFrom,
  htpasswdEntry,
  parseHtpasswdLine,
  renderHtpasswd,
  sshaEntry,
} from "../../renderers/htpasswd.ts";
import { describeWithTools, run, tempDir, toolPath, tools } from "./helpers.ts";

/** bcryptjs verifies `$2b$`; the hash part is the same for `$2y$`. */
function verify(line: string, password: string): boolean {
  const { hash } = parseHtpasswdLine(line);
  return bcrypt.compareSync(password, `$2b$${hash.slice(4)}`);
}

describe("bcryptSaltFrom", () => {
  it("derives a valid, stable bcrypt salt from a seed", () => {
    const salt = bcryptSaltFrom("a secret seed", 10);
    expect(salt).toMatch(/^\$2b\$10\$[./A-Za-z0-9]{22}$/);
    expect(bcryptSaltFrom("a secret seed", 10)).toBe(salt);
    expect(bcryptSaltFrom("another seed", 10)).not.toBe(salt);
    expect(bcryptSaltFrom("a secret seed", 4)).toMatch(/^\$2b\$04\$/);
    // bcryptjs accepts it as a salt.
    expect(bcrypt.hashSync("x", salt).startsWith(salt)).toBe(true);
  });

  it("pins the derivation (HMAC-SHA256, bcrypt base64; checked with Python) — changing it rotates every htpasswd", () => {
    expect(bcryptSaltFrom("berth", 12)).toBe("$2b$12$yPTcrJpCn4b4jS2ZOvFfWu");
  });

  it("refuses an empty seed and a cost outside 4..31", () => {
    expect(() => bcryptSaltFrom("", 10)).toThrow(/seed/);
    expect(() => bcryptSaltFrom("x", 3)).toThrow(RenderError);
    expect(() => bcryptSaltFrom("x", 32)).toThrow(/cost/);
  });
});

describe("htpasswdEntry", () => {
  it("is deterministic with a derived salt and writes $2y$", () => {
    const salt = bcryptSaltFrom("seed:jenkins", 4);
    const a = htpasswdEntry("jenkins", "pw-1", { salt });
    expect(a).toBe(htpasswdEntry("jenkins", "pw-1", { salt, cost: 4 }));
    expect(a).toMatch(/^jenkins:\$2y\$04\$[./A-Za-z0-9]{53}$/);
    expect(a.slice("jenkins:$2y$04$".length, "jenkins:$2y$04$".length + 22)).toBe(salt.slice(7));
    expect(verify(a, "pw-1")).toBe(true);
    expect(verify(a, "pw-2")).toBe(false);
    expect(htpasswdEntry("jenkins", "pw-2", { salt })).not.toBe(a);
  });

  it("accepts the 22 salt characters alone", () => {
    const salt = bcryptSaltFrom("s", 5);
    expect(htpasswdEntry("u", "p", { salt: salt.slice(7), cost: 5 })).toBe(htpasswdEntry("u", "p", { salt }));
  });

  it("uses a random salt when none is given", () => {
    const a = htpasswdEntry("u", "p", { cost: 4 });
    const b = htpasswdEntry("u", "p", { cost: 4 });
    expect(a).not.toBe(b);
    expect(verify(a, "p") && verify(b, "p")).toBe(true);
  });

  it.each<[string, () => string, RegExp]>([
    ["an empty user", () => htpasswdEntry("", "p", { cost: 4 }), /must not be empty/],
    ["a user with a colon", () => htpasswdEntry("a:b", "p", { cost: 4 }), /must not contain ":"/],
    ["a user with a newline", () => htpasswdEntry("a\nb", "p", { cost: 4 }), /whitespace/],
    ["a user with a space", () => htpasswdEntry("a b", "p", { cost: 4 }), /whitespace/],
    ["an empty password", () => htpasswdEntry("u", "", { cost: 4 }), /empty password for user u/],
    ["a password over 72 bytes", () => htpasswdEntry("u", "é".repeat(37), { cost: 4 }), /72 bytes/],
    ["a malformed salt", () => htpasswdEntry("u", "p", { salt: "$2b$10$short" }), /salt/],
    [
      "a cost that contradicts the salt",
      () => htpasswdEntry("u", "p", { salt: bcryptSaltFrom("s", 5), cost: 6 }),
      /cost/,
    ],
    ["cost 3", () => htpasswdEntry("u", "p", { cost: 3 }), /cost/],
  ])("refuses %s", (_what, call, message) => {
    expect(call).toThrow(RenderError);
    expect(call).toThrow(message);
  });
});

describe("sshaEntry", () => {
  const generated = "q7Rk2LmZx9VbT4nWc8HsJ3pYd6FgA1eU";

  it("writes nginx's {SSHA}: base64 of SHA-1(password, salt) then the 16-byte salt, stable per seed", () => {
    const line = sshaEntry("ci", generated, "seed:ci");
    expect(line).toMatch(/^ci:\{SSHA\}[A-Za-z0-9+/]{48}$/);
    expect(sshaEntry("ci", generated, "seed:ci")).toBe(line);
    expect(sshaEntry("ci", generated, "other seed")).not.toBe(line);
    const raw = Buffer.from(line.slice("ci:{SSHA}".length), "base64");
    expect(raw).toHaveLength(36);
    const salt = raw.subarray(20);
    // Checked independently of the renderer: Python's hashlib over the same bytes.
    const py = run("python3", [
      "-c",
      "import hashlib,sys; print(hashlib.sha1(sys.argv[1].encode() + bytes.fromhex(sys.argv[2])).hexdigest())",
      generated,
      salt.toString("hex"),
    ]);
    expect(py.status).toBe(0);
    expect(raw.subarray(0, 20).toString("hex")).toBe(py.stdout.trim());
    expect(parseHtpasswdLine(line)).toEqual({ user: "ci", hash: line.slice(3) });
  });

  it("is only for generated passwords: a short one is refused with the fix named", () => {
    expect(() => sshaEntry("ci", "short-chosen-pw", "s")).toThrow(/shorter than 24 characters.*bcrypt/);
    expect(() => sshaEntry("ci", generated, "")).toThrow(/seed/);
    expect(() => sshaEntry("a:b", generated, "s")).toThrow(/must not contain ":"/);
  });
});

describe("renderHtpasswd", () => {
  const salt = (u: string) => bcryptSaltFrom(`seed:${u}`, 4);
  const entry = (u: string) => htpasswdEntry(u, `pw-${u}`, { salt: salt(u) });

  it("sorts by user name in code-point order, one line each", () => {
    const file = renderHtpasswd([entry("jenkins"), entry("Zed"), entry("admin")]);
    expect(file.split("\n").map((l) => l.split(":")[0])).toEqual(["Zed", "admin", "jenkins", ""]);
    expect(renderHtpasswd([entry("admin"), entry("jenkins"), entry("Zed")])).toBe(file);
  });

  it("refuses duplicate users and lines that are not bcrypt", () => {
    expect(() => renderHtpasswd([entry("a"), htpasswdEntry("a", "x", { cost: 4 })])).toThrow(
      /"a" appears more than once/,
    );
    expect(() => renderHtpasswd(["u:{SHA}abc"])).toThrow(/neither a bcrypt nor a \{SSHA\} hash/);
    expect(() => renderHtpasswd(["u:{SSHA}short"])).toThrow(/neither a bcrypt nor a \{SSHA\} hash/);
    expect(() => renderHtpasswd(["no-colon"])).toThrow(RenderError);
  });

  it("renders an empty file for no users", () => {
    expect(renderHtpasswd([])).toBe("");
  });
});

describeWithTools("htpasswd (apache2-utils) agrees with our bcrypt", { tools: [tools.htpasswd] }, () => {
  let tmp = { path: "", remove: () => {} };
  beforeAll(() => {
    tmp = tempDir("htpasswd");
  });
  afterAll(() => tmp.remove());

  const passwords = ["simple", "with space and: colon", "ünïcödé-ß€", "x".repeat(72), "$2y$trick\\'\""];

  it.each(passwords)("htpasswd -vb accepts our entry for %j", (password) => {
    const file = join(tmp.path, "file");
    writeFileSync(
      file,
      renderHtpasswd([htpasswdEntry("ci", password, { salt: bcryptSaltFrom(password, 5) })]),
    );
    const ok = run(toolPath(tools.htpasswd), ["-vb", file, "ci", password]);
    expect(ok.stderr).toContain("Password for user ci correct");
    expect(ok.status).toBe(0);
    const bad = run(toolPath(tools.htpasswd), ["-vb", file, "ci", `${password}!`.slice(-72)]);
    expect(bad.status).not.toBe(0);
  });

  it("we verify a $2y$ entry made by htpasswd -B", () => {
    const made = run(toolPath(tools.htpasswd), ["-nbB", "-C", "5", "ci", "from-apache"]);
    expect(made.status).toBe(0);
    const line = made.stdout.trim();
    expect(line).toMatch(/^ci:\$2y\$05\$/);
    expect(verify(line, "from-apache")).toBe(true);
    expect(verify(line, "other")).toBe(false);
  });
});
