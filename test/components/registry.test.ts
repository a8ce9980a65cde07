/**
 * The Registry component on its own, under Pulumi's mocks: its users, secret passwords and htpasswd
 * lines, placeholders for passwords only known encrypted, a provided TLS key kept secret, and the
 * refusal of a self-signed setup without the stack's CA. (The registry's nginx as the program
 * deploys it: registry-nginx.test.ts.)
 */
import bcrypt from "bcryptjs";
import type * as docker from "@pulumi/docker";
import { describe, expect, it } from "vitest";
import { bcryptSaltFrom, sshaEntry } from "../../renderers/htpasswd.ts";
import { loadStack } from "../../config/load.ts";
import { PROJECT_ROOT } from "../../config/root.ts";
import { resolveOutput, runUnderMocks } from "../../plan/mocks.ts";
import { DockerHost } from "../../components/docker-host.ts";
import { StackCa } from "../../components/pki.ts";
import { OFFLINE_PLACEHOLDER_PREFIX, Registry } from "../../components/registry.ts";
import { isSecret, list, reveal, type Upload } from "../support/captured.ts";

const mocked = runUnderMocks;

/** Components that refuse their input throw before registering anything: no provider needed. */
const NO_PROVIDER = {} as docker.Provider;

const staging = () => loadStack(PROJECT_ROOT, "staging");

describe("Registry", () => {
  it("exports the users, a secret password map, and htpasswd lines that verify and do not change between runs", async () => {
    const c = staging();
    const once = async () => {
      const run = await mocked("staging", () => {
        const provider = new DockerHost("h-dockerd", { hostName: "h", address: "203.0.113.5", serverId: "s" })
          .provider;
        const ca = new StackCa("ca", { commonName: "ca", organization: "Berth" });
        return new Registry("h-registry", {
          hostName: "h",
          privateIp: "10.42.20.11",
          hostname: c.registry.hostname,
          tls: { mode: "self-signed", validityDays: 30 },
          ca,
          users: [
            { name: "jenkins" },
            { name: "ops", password: { kind: "plain", value: "correct horse battery" } },
          ],
          image: c.registry.image,
          nginxImage: c.registry.nginxImage,
          mirrorAllowCidrs: ["10.42.20.0/24"],
          protectData: false,
          provider,
        });
      });
      const nginx = run.resources.find((r) => r.name === "h-registry-nginx")!;
      const htpasswd = reveal(
        list<Upload>(nginx.inputs.uploads).find((u) => u.file.endsWith("htpasswd"))!.content,
      ) as string;
      const seeds = Object.fromEntries(
        run.resources
          .filter((r) => r.type === "random:index/randomPassword:RandomPassword" && r.name.endsWith("-salt"))
          .map((r) => [r.name, String(r.state.result)]),
      );
      return { registry: run.result, htpasswd, seeds };
    };
    const first = await once();
    const second = await once();
    expect(second.htpasswd).toBe(first.htpasswd);
    expect(first.registry.users).toEqual(["jenkins", "ops"]);
    expect(first.registry.url).toBe(`https://${c.registry.hostname}`);
    const passwords = await resolveOutput(first.registry.passwords);
    expect(passwords.secret).toBe(true);
    expect(passwords.value.ops).toBe("correct horse battery");
    expect(passwords.value.jenkins).toMatch(/^mock-/);
    for (const line of first.htpasswd.trim().split("\n")) {
      const [user, hash] = line.split(":") as [string, string];
      const seed = first.seeds[`h-registry-user-${user}-salt`];
      expect(seed, user).toBeDefined();
      if (user === "ops") {
        // A provided password keeps bcrypt's work factor, its salt from the user's random seed in
        // state, not from the password: knowing the line, a guess costs a bcrypt, not one HMAC.
        expect(hash.slice(0, 7), user).toBe("$2y$10$");
        expect(bcrypt.compareSync(passwords.value[user]!, `$2b$${hash.slice(4)}`), user).toBe(true);
        expect(bcrypt.compareSync("wrong password", `$2b$${hash.slice(4)}`), user).toBe(false);
        expect(hash.slice(7, 29), user).toBe(bcryptSaltFrom(seed!, 10).slice(7, 29));
        expect(hash.slice(7, 29), user).not.toBe(
          bcryptSaltFrom(`${passwords.value[user]!}:${user}`, 10).slice(7, 29),
        );
      } else {
        // A generated password gets nginx's {SSHA}, salted from the same kind of seed.
        expect(line, user).toBe(sshaEntry(user, passwords.value[user]!, seed!));
        expect(line, user).not.toBe(
          sshaEntry(user, passwords.value[user]!, `${passwords.value[user]!}:${user}`),
        );
      }
    }
    const ca = await resolveOutput(first.registry.caCertPem);
    expect(ca.value).toMatch(/BEGIN CERTIFICATE/);
  });

  it("uses a clearly named placeholder for passwords only known encrypted, and the provided TLS key as a secret", async () => {
    const c = staging();
    const run = await mocked("staging", () => {
      const provider = new DockerHost("h-dockerd", { hostName: "h", address: "203.0.113.5", serverId: "s" })
        .provider;
      return new Registry("h-registry", {
        hostName: "h",
        privateIp: "10.42.20.11",
        hostname: c.registry.hostname,
        tls: {
          mode: "provided",
          certificate: "-----BEGIN CERTIFICATE-----\nprovided\n-----END CERTIFICATE-----\n",
          privateKey: {
            kind: "plain",
            value: "-----BEGIN PRIVATE KEY-----\nprovided-key\n-----END PRIVATE KEY-----\n",
          },
        },
        users: [{ name: "ci", password: { kind: "encrypted", ciphertext: "v1:abc" } }],
        image: c.registry.image,
        nginxImage: c.registry.nginxImage,
        mirrorAllowCidrs: ["10.42.20.0/24"],
        protectData: true,
        provider,
      });
    });
    const passwords = await resolveOutput(run.result.passwords);
    expect(passwords.value.ci).toContain(OFFLINE_PLACEHOLDER_PREFIX);
    const nginx = run.resources.find((r) => r.name === "h-registry-nginx")!;
    const key = list<Upload>(nginx.inputs.uploads).find((u) => u.file.endsWith("registry.key"))!;
    expect(isSecret(key.content)).toBe(true);
    expect(reveal(key.content)).toContain("provided-key");
    expect(run.resources.some((r) => r.type.startsWith("tls:"))).toBe(false);
    const volume = run.resources.find((r) => r.type === "docker:index/volume:Volume")!;
    expect([volume.protect, volume.retainOnDelete]).toEqual([true, true]);
  });

  it("refuses a self-signed setup without the stack's CA", () => {
    const c = staging();
    expect(
      () =>
        new Registry("h-registry", {
          hostName: "h",
          privateIp: "10.42.20.11",
          hostname: c.registry.hostname,
          tls: { mode: "self-signed", validityDays: 30 },
          users: [],
          image: c.registry.image,
          nginxImage: c.registry.nginxImage,
          mirrorAllowCidrs: [],
          protectData: false,
          provider: NO_PROVIDER,
        }),
    ).toThrow(/registry CA/);
  });
});
