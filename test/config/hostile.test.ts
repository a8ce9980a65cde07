/**
 * Hostile and hurried input (issue #14): every case goes through the real CLI against a project
 * root holding the shipped stacks with one edit. A bad case must be refused by `berth validate`
 * and by `berth plan` with a message naming the field (never a stack trace); a good one must
 * validate and plan cleanly.
 */
import { cli } from "../support/cli.ts";
import { afterAll, describe, expect, it } from "vitest";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { PROJECT_ROOT } from "../../config/root.ts";
import { requireTools } from "../support/tools.ts";

/** The provided-TLS cases make their certificates with the real openssl. */
const noOpenssl = requireTools("provided-TLS cases", [{ tool: "openssl", debianPackage: "openssl" }]).skip;

type Config = Record<string, Record<string, unknown> | unknown>;
type Obj = Record<string, unknown>;

const roots: string[] = [];
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

/** A project root with the shipped stacks and snippets; `edit` changes one stack's config map. */
function project(
  edit: (c: Config, root: string) => void,
  opts: { from?: string; as?: string; raw?: string } = {},
): { root: string; stack: string } {
  // One level down, so that `../x.json` is a real file outside the project root.
  const outer = mkdtempSync(join(tmpdir(), "berth-hostile-"));
  roots.push(outer);
  const root = join(outer, "project");
  mkdirSync(root);
  writeFileSync(join(outer, "outside.json"), JSON.stringify({ ignition: { version: "3.3.0" } }));
  cpSync(join(PROJECT_ROOT, "stacks"), join(root, "stacks"), { recursive: true });
  cpSync(join(PROJECT_ROOT, "snippets"), join(root, "snippets"), { recursive: true });
  const from = opts.from ?? "testing";
  const stack = opts.as ?? from;
  if (opts.raw !== undefined) {
    writeFileSync(join(root, "stacks", `Pulumi.${stack}.yaml`), opts.raw);
    return { root, stack };
  }
  const doc = parse(readFileSync(join(PROJECT_ROOT, "stacks", `Pulumi.${from}.yaml`), "utf8")) as {
    config: Config;
  };
  edit(doc.config, root);
  writeFileSync(join(root, "stacks", `Pulumi.${stack}.yaml`), stringify(doc));
  return { root, stack };
}

const obj = (c: Config, key: string): Obj => c[`berth:${key}`] as Obj;

/** An OpenSSH line for a raw key blob. */
function sshLine(fields: Buffer[], comment = "test@example.com"): string {
  const blob = Buffer.concat(
    fields.flatMap((f) => {
      const len = Buffer.alloc(4);
      len.writeUInt32BE(f.length);
      return [len, f];
    }),
  );
  const type = fields[0]?.toString("latin1") ?? "";
  return `${type} ${blob.toString("base64")} ${comment}`;
}
const mpint = (b: Buffer) => ((b[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.alloc(1), b]) : b);
function rsaKeyLine(bits: number): string {
  const jwk = generateKeyPairSync("rsa", { modulusLength: bits }).publicKey.export({ format: "jwk" });
  return sshLine([
    Buffer.from("ssh-rsa"),
    mpint(Buffer.from(jwk.e as string, "base64url")),
    mpint(Buffer.from(jwk.n as string, "base64url")),
  ]);
}
const ed25519Line = (i: number) =>
  sshLine([Buffer.from("ssh-ed25519"), randomBytes(32)], `user${i}@example.com`);

/** A self-signed certificate and key for `host`, made by openssl. */
function certFor(host: string): { cert: string; key: string } {
  if (noOpenssl) throw new Error("openssl is missing");
  const dir = mkdtempSync(join(tmpdir(), "berth-cert-"));
  roots.push(dir);
  const r = spawnSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-days",
      "30",
      "-subj",
      `/CN=${host}`,
      "-addext",
      `subjectAltName=DNS:${host}`,
      "-keyout",
      join(dir, "key.pem"),
      "-out",
      join(dir, "cert.pem"),
    ],
    { encoding: "utf8" },
  );
  expect(r.status, r.stderr).toBe(0);
  return {
    cert: readFileSync(join(dir, "cert.pem"), "utf8"),
    key: readFileSync(join(dir, "key.pem"), "utf8"),
  };
}

interface Refused {
  name: string;
  make: () => { root: string; stack: string };
  /** Every field path the message must name. */
  paths: string[];
  /** Further text the message must hold. */
  mentions?: string[];
}

const TESTING_HOST = "registry.testing.ci.example.com";

const refused: Refused[] = [
  // --- ports a host binds twice ---
  ...[22, 443, 2201, 6379].map((port) => ({
    name: `hosts.dockerTlsPort ${port}`,
    make: () => project((c) => void (obj(c, "hosts").dockerTlsPort = port)),
    paths: ["berth:hosts.dockerTlsPort"],
    mentions: [`port ${port}`],
  })),
  {
    name: "hosts.dockerTlsPort 2201 names the agents' basePort",
    make: () => project((c) => void (obj(c, "hosts").dockerTlsPort = 2201)),
    paths: ["berth:hosts.dockerTlsPort", "berth:jenkins.basePort"],
  },
  {
    name: "hosts.dockerTlsPort 6379 names the minimal redis",
    make: () => project((c) => void (obj(c, "hosts").dockerTlsPort = 6379)),
    paths: ["berth:hosts.dockerTlsPort", "berth:services.minimal[0]"],
  },
  ...[2201, 2376].map((port) => ({
    name: `registry.pullThroughCache.port ${port}`,
    make: () => project((c) => void (obj(c, "registry").pullThroughCache = { port })),
    paths: ["berth:registry.pullThroughCache.port"],
  })),
  {
    name: "jenkins.basePort 8440 with four agents over the mirror's 8443",
    make: () =>
      project((c) => {
        Object.assign(obj(c, "jenkins"), { basePort: 8440, agentsPerHost: 4 });
        obj(c, "registry").pullThroughCache = { port: 8443 };
      }),
    paths: ["berth:jenkins.basePort", "berth:registry.pullThroughCache.port"],
    mentions: ["8441-8444"],
  },
  {
    name: "dockerd TLS inside the per-build range",
    make: () =>
      project(
        (c) => {
          obj(c, "hosts").dockerTlsPort = 40000;
        },
        { from: "staging" },
      ),
    paths: ["berth:hosts.dockerTlsPort", "berth:jenkins.perBuild.enabled"],
    mentions: ["32768-60999"],
  },
  // --- container names taken twice ---
  ...["dnsmasq", "registry-nginx", "jenkins-agent-1", "mongodb-cluster-a-node-1"].map((holder) => ({
    name: `network holder named ${holder}`,
    make: () => project((c) => void (obj(c, "services").networkHolders as string[]).push(holder)),
    paths: ["berth:services.networkHolders[1]"],
    mentions: [`"${holder}"`],
  })),
  {
    name: "a production-like service named redis next to the minimal redis",
    make: () =>
      project((c) => {
        (obj(c, "services").productionLike as Obj[]).push({
          name: "redis",
          kind: "redis",
          address: "172.30.0.22",
        });
      }),
    paths: ["berth:services.productionLike[2].name", "berth:services.minimal[0]"],
  },
  // --- keys and names ---
  {
    name: "an SSH key that is only its type header",
    make: () =>
      project((c) => {
        (obj(c, "hosts").sshKeys as string[]).push(sshLine([Buffer.from("ssh-ed25519")]));
      }),
    paths: ["berth:hosts.sshKeys[1]"],
    mentions: ["only part of a ssh-ed25519 key"],
  },
  {
    name: "a 512-bit RSA key",
    make: () => project((c) => void (obj(c, "hosts").sshKeys = [rsaKeyLine(512)])),
    paths: ["berth:hosts.sshKeys[0]"],
    mentions: ["512-bit RSA key", "2048"],
  },
  {
    name: "a 1024-bit RSA agent key",
    make: () => project((c) => void (obj(c, "jenkins").agentPublicKey = rsaKeyLine(1024))),
    paths: ["berth:jenkins.agentPublicKey"],
    mentions: ["1024-bit"],
  },
  ...["Mars/Olympus", "Europe/Atlantis", "europe/rome"].map((tz) => ({
    name: `time zone ${tz}`,
    make: () => project((c) => void (obj(c, "hosts").timezone = tz)),
    paths: ["berth:hosts.timezone"],
  })),
  ...(
    [
      ["hosts", "flavor", "m1.large\nm1.xlarge"],
      ["hosts", "flavor", "m1.large\u0000"],
      ["openstack", "image", "fedora-coreos\r"],
      ["openstack", "externalNetwork", "public\u001b[31m"],
      ["hosts", "flavor", " m1.large"],
    ] as const
  ).map(([key, field, value]) => ({
    name: `${key}.${field} ${JSON.stringify(value)}`,
    make: () => project((c) => void (obj(c, key)[field] = value)),
    paths: [`berth:${key}.${field}`],
  })),
  {
    name: "a production-like name plus search domain over 253 characters",
    make: () =>
      project((c) => {
        obj(c, "dns").searchDomains = [["a", "b", "c"].map((l) => l.repeat(63)).join(".")];
        (obj(c, "services").productionLike as Obj[])[0]!.name = "n".repeat(63);
      }),
    paths: ["berth:services.productionLike[0].name"],
    mentions: ["253"],
  },
  {
    name: "a provided certificate with its private key pasted in",
    make: () =>
      project((c) => {
        const { cert, key } = certFor(TESTING_HOST);
        obj(c, "registry").tls = { mode: "provided", certificate: cert + key, privateKey: key };
      }),
    paths: ["berth:registry.tls.certificate"],
    mentions: ["private key"],
  },
  {
    name: "a provided certificate with garbage after its BEGIN line",
    make: () =>
      project((c) => {
        const { cert, key } = certFor(TESTING_HOST);
        const bad = cert.replace(
          "-----BEGIN CERTIFICATE-----\n",
          "-----BEGIN CERTIFICATE-----\ngarbage here\n",
        );
        obj(c, "registry").tls = { mode: "provided", certificate: bad, privateKey: key };
      }),
    paths: ["berth:registry.tls.certificate"],
    mentions: ["not base64"],
  },
  {
    name: "a provided certificate for another host name",
    make: () =>
      project((c) => {
        const { cert, key } = certFor("other.example.com");
        obj(c, "registry").tls = { mode: "provided", certificate: cert, privateKey: key };
      }),
    paths: ["berth:registry.tls.certificate"],
    mentions: ["not valid for berth:registry.hostname"],
  },
  {
    name: "a provided key that is not the certificate's",
    make: () =>
      project((c) => {
        const { cert } = certFor(TESTING_HOST);
        const { key } = certFor(TESTING_HOST);
        obj(c, "registry").tls = { mode: "provided", certificate: cert, privateKey: key };
      }),
    paths: ["berth:registry.tls.privateKey"],
  },
  ...[
    ["../outside.json", "outside the project root"],
    ["snippets/../../outside.json", "outside the project root"],
    ["<absolute>", "is absolute"],
  ].map(([path, why]) => ({
    name: `extraIgnition path ${path}`,
    make: () =>
      project((c, root) => {
        const file = path === "<absolute>" ? join(root, "..", "outside.json") : (path as string);
        c["berth:extraIgnition"] = [{ path: file }];
      }),
    paths: ["berth:extraIgnition[0].path"],
    mentions: [why as string],
  })),
  {
    name: "extraIgnition through a symlink that leaves the project",
    make: () =>
      project((c, root) => {
        const outside = mkdtempSync(join(tmpdir(), "berth-outside-"));
        roots.push(outside);
        writeFileSync(join(outside, "f.json"), JSON.stringify({ ignition: { version: "3.3.0" } }));
        symlinkSync(join(outside, "f.json"), join(root, "snippets", "escape.json"));
        c["berth:extraIgnition"] = [{ path: "snippets/escape.json" }];
      }),
    paths: ["berth:extraIgnition[0].path"],
    mentions: ["symbolic link"],
  },
  {
    name: "namespace typo Berth:services",
    make: () =>
      project((c) => {
        c["Berth:services"] = c["berth:services"];
        delete c["berth:services"];
      }),
    paths: ["Berth:services"],
    mentions: ["berth:services"],
  },
  {
    name: "namespace typo brth:previewTtlHours",
    make: () => project((c) => void (c["brth:previewTtlHours"] = 24)),
    paths: ["brth:previewTtlHours"],
  },
  // --- accepted before, then `berth plan` crashed ---
  {
    name: "a trailing dot on registry.hostname",
    make: () => project((c) => void (obj(c, "registry").hostname = `${TESTING_HOST}.`)),
    paths: ["berth:registry.hostname"],
    mentions: ["ends with a dot"],
  },
  {
    name: "a trailing dot on dns.searchDomains[0]",
    make: () => project((c) => void (obj(c, "dns").searchDomains = ["ci.example.internal."])),
    paths: ["berth:dns.searchDomains[0]"],
  },
  {
    name: "the old single dns.searchDomain of a stack file written before the rename",
    make: () => project((c) => void (c["berth:dns"] = { searchDomain: "ci.example.internal" })),
    paths: ["berth:dns.searchDomain"],
    mentions: ["renamed to berth:dns.searchDomains", "searchDomains: [ci.example.internal]"],
  },
  {
    name: "a registry password longer than bcrypt's 72 bytes",
    make: () => project((c) => void ((obj(c, "registry").users as Obj[])[0]!.password = "p".repeat(73))),
    paths: ["berth:registry.users[0].password"],
    mentions: ["72"],
  },
  {
    name: "600 SSH keys (user data over Nova's limit)",
    make: () =>
      project((c) => void (obj(c, "hosts").sshKeys = Array.from({ length: 600 }, (_, i) => ed25519Line(i)))),
    paths: ["berth:hosts.sshKeys"],
    mentions: ["65535"],
  },
  ...["QA_env", "Staging", "s".repeat(60)].map((name) => ({
    name: `stack name ${name.length > 20 ? `of ${name.length} characters` : name}`,
    make: () => project(() => undefined, { as: name }),
    paths: ["stack name"],
  })),
];

function noStackTrace(text: string): void {
  expect(text).not.toMatch(/^\s+at .+[(:]\d+/m);
  expect(text).not.toMatch(/\b(TypeError|RangeError|ReferenceError)\b/);
}

describe("refused by berth validate and berth plan, naming the field", () => {
  it.each(refused.filter((r) => !(noOpenssl && /certificate|provided key/.test(r.name))))(
    "$name",
    async ({ make, paths, mentions }) => {
      const { root, stack } = make();
      for (const argv of [
        ["validate", stack],
        ["plan", stack, "--out", join(root, "out")],
      ]) {
        const r = await cli(root, ...argv);
        expect(r.code, `${argv[0]}: ${r.err}${r.out}`).toBe(1);
        expect(r.out).toBe("");
        expect(r.err).toContain(`Invalid Berth configuration for stack "${stack}"`);
        for (const p of paths) expect(r.err).toContain(p);
        for (const m of mentions ?? []) expect(r.err).toContain(m);
        noStackTrace(r.err);
      }
    },
  );
});

interface Accepted {
  name: string;
  make: () => { root: string; stack: string };
}

const accepted: Accepted[] = [
  {
    name: "pr-17 with only overrides",
    make: () =>
      project(() => undefined, {
        as: "pr-17",
        raw: "config:\n  berth:previewTtlHours: 24\n  berth:jenkins:\n    agentsPerHost: 0\n",
      }),
  },
  {
    name: "pr-17 with only the encryptionsalt of `pulumi stack init`",
    make: () =>
      project(() => undefined, {
        as: "pr-17",
        raw: "encryptionsalt: v1:4n3qL0m3dQ0=:v1:Jm9XfKq1Z3h0M2Nn:ZmFrZXNhbHQ=\n",
      }),
  },
  {
    name: "a provided certificate and its key",
    make: () =>
      project((c) => {
        const { cert, key } = certFor(TESTING_HOST);
        obj(c, "registry").tls = {
          mode: "provided",
          certificate: cert,
          privateKey: key,
          caCertificate: cert,
        };
      }),
  },
  ...["UTC", "Etc/UTC", "America/Argentina/Buenos_Aires", "US/Eastern"].map((tz) => ({
    name: `time zone ${tz}`,
    make: () => project((c) => void (obj(c, "hosts").timezone = tz)),
  })),
  {
    name: "a 2048-bit RSA key and a 72-byte password",
    make: () =>
      project((c) => {
        obj(c, "hosts").sshKeys = [rsaKeyLine(2048)];
        (obj(c, "registry").users as Obj[])[0]!.password = "p".repeat(72);
      }),
  },
  {
    name: "a stack name of 53 characters with one host",
    make: () => project(() => undefined, { as: "s".repeat(53) }),
  },
];

describe("accepted, then planned cleanly", () => {
  it.each(accepted.filter((r) => !(noOpenssl && /certificate/.test(r.name))))("$name", async ({ make }) => {
    const { root, stack } = make();
    const v = await cli(root, "validate", stack);
    expect(v.err).toBe("");
    expect(v.code).toBe(0);
    const out = join(root, "out");
    mkdirSync(out, { recursive: true });
    const p = await cli(root, "plan", stack, "--out", out);
    expect(p.err).toBe("");
    expect(p.code).toBe(0);
    expect(readFileSync(join(out, "plan.md"), "utf8")).toContain(stack);
  });

  it("pr-17's overrides apply on top of testing, key by key", async () => {
    const { root } = project(() => undefined, {
      as: "pr-17",
      raw: "config:\n  berth:previewTtlHours: 24\n  berth:jenkins:\n    agentsPerHost: 0\n",
    });
    const r = await cli(root, "validate", "pr-17");
    expect(r.code).toBe(0);
    const { loadStack } = await import("../../config/load.ts");
    const cfg = loadStack(root, "pr-17");
    expect(cfg.preview).toEqual({ pr: 17, ttlHours: 24 });
    expect(cfg.jenkins.agentsPerHost).toBe(0);
    // The rest of jenkins comes from testing.
    expect(cfg.jenkins.controllerCidr).toBe("198.51.100.40/32");
    expect(cfg.hosts.names).toEqual(["pr-17-ci-1"]);
  });
});
