/**
 * `berth images check`: reference parsing, and the whole command against a real registry
 * (Debian's docker-registry on 127.0.0.1) filled by skopeo with images this test makes
 * (test/support/oci.ts).
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { checkPin, parseReference } from "../../cli/images.ts";
import { DEFAULT_IMAGES } from "../../config/images.ts";
import { PROJECT_ROOT } from "../../config/root.ts";
import { renderRegistryConfig } from "../../renderers/registry.ts";
import { cli } from "../support/cli.ts";
import { ociImage } from "../support/oci.ts";
import {
  describeWithTools,
  freePort,
  run,
  startDaemon,
  tempDir,
  toolPath,
  tools,
  waitFor,
  type Daemon,
} from "../renderers/helpers.ts";

describe("parseReference", () => {
  it.each([
    ["redis:7.4-alpine@sha256:ab", "docker.io", "library/redis", "7.4-alpine", "sha256:ab"],
    ["jenkins/ssh-agent:6.10.0", "docker.io", "jenkins/ssh-agent", "6.10.0", undefined],
    ["4km3/dnsmasq:2.90-r3@sha256:cd", "docker.io", "4km3/dnsmasq", "2.90-r3", "sha256:cd"],
    ["registry.example.com/berth/agent:abc", "registry.example.com", "berth/agent", "abc", undefined],
    ["127.0.0.1:5000/library/nginx:1.27@sha256:ef", "127.0.0.1:5000", "library/nginx", "1.27", "sha256:ef"],
    ["localhost/x/y", "localhost", "x/y", undefined, undefined],
    ["busybox", "docker.io", "library/busybox", undefined, undefined],
  ])("%s", (ref, registry, repository, tag, digest) => {
    expect(parseReference(ref)).toEqual({ registry, repository, tag, digest });
  });

  it("refuses to compare a reference that is not pinned by tag and digest", async () => {
    const r = await checkPin("busybox:1.36", { tlsVerify: false, skopeo: "/bin/false" });
    expect(r.status).toBe("error");
    expect(r.detail).toMatch(/not pinned/);
  });
});

describeWithTools(
  "berth images check against a real registry",
  { tools: [tools.registry, tools.skopeo] },
  () => {
    let tmp = { path: "", remove: () => {} };
    let daemon: Daemon | undefined;
    let registry = "";
    let root = "";
    const digests: Record<string, string> = {};

    /** Pushes a new image holding `text` as `<registry>/<repository>:<tag>`; returns its manifest digest. */
    function push(name: string, repository: string, tag: string, text: string): string {
      const dir = join(tmp.path, "oci", name);
      ociImage(dir, text);
      const digestFile = join(dir, "pushed-digest");
      const r = run(
        toolPath(tools.skopeo),
        [
          "copy",
          "--quiet",
          "--dest-tls-verify=false",
          "--digestfile",
          digestFile,
          `oci:${dir}:latest`,
          `docker://${registry}/${repository}:${tag}`,
        ],
        60_000,
      );
      expect(r.status, r.stderr).toBe(0);
      return readFileSync(digestFile, "utf8").trim();
    }

    beforeAll(async () => {
      tmp = tempDir("images-check");
      const port = await freePort();
      registry = `127.0.0.1:${port}`;
      const config = join(tmp.path, "config.yml");
      writeFileSync(
        config,
        renderRegistryConfig({
          httpSecret: "images-check-test-secret",
          addr: registry,
          rootDirectory: join(tmp.path, "data"),
        }),
      );
      daemon = startDaemon(toolPath(tools.registry), ["serve", config]);
      await waitFor("docker-registry", async () => {
        const r = await fetch(`http://${registry}/v2/`);
        return r.status === 200;
      }).catch((e: unknown) => {
        throw new Error(`${String(e)}\n${daemon?.output() ?? ""}`);
      });

      // registry:2.8.3: pinned and current.
      digests.registry = push("registry", "library/registry", "2.8.3", "registry v1\n");
      // nginx: pinned at v1, then the tag moves to v2.
      digests.nginxOld = push("nginx-1", "library/nginx", "1.27-alpine", "nginx v1\n");
      digests.nginxNew = push("nginx-2", "library/nginx", "1.27-alpine", "nginx v2\n");
      // jenkins/ssh-agent: the tag exists, the pinned digest never did.
      digests.agentTag = push("agent", "jenkins/ssh-agent", "6.10.0", "agent\n");

      // A project whose testing stack pins those three (the services' pins stay the defaults).
      root = join(tmp.path, "project");
      mkdirSync(join(root, "stacks"), { recursive: true });
      const doc = parse(readFileSync(join(PROJECT_ROOT, "stacks", "Pulumi.testing.yaml"), "utf8")) as {
        config: Record<string, Record<string, unknown>>;
      };
      doc.config["berth:registry"]!.image = `registry:2.8.3@${digests.registry}`;
      doc.config["berth:registry"]!.nginxImage = `nginx:1.27-alpine@${digests.nginxOld}`;
      doc.config["berth:jenkins"]!.image = `jenkins/ssh-agent:6.10.0@sha256:${"0".repeat(64)}`;
      writeFileSync(join(root, "stacks", "Pulumi.testing.yaml"), stringify(doc));
    }, 120_000);

    afterAll(async () => {
      await daemon?.stop();
      tmp.remove();
    });

    it("sorts every pin the program registers into current, outdated and missing; exit 3", async () => {
      const r = await cli(root, "images", "check", "testing", "--registry", registry, "--insecure");
      expect(r.err).toBe("");
      expect(r.code).toBe(3);
      const rows = new Map(
        r.out
          .split("\n")
          .filter((l) => /^(current|outdated|missing|error) /.test(l))
          .map((l) => {
            const [status, image] = l.split(/\s+/);
            return [image, { status, line: l }] as const;
          }),
      );
      expect(rows.get("registry:2.8.3")?.status).toBe("current");
      expect(rows.get("nginx:1.27-alpine")?.status).toBe("outdated");
      expect(rows.get("nginx:1.27-alpine")?.line).toContain(`now points to ${digests.nginxNew}`);
      expect(rows.get("jenkins/ssh-agent:6.10.0")?.status).toBe("missing");
      // The defaults this registry never received: the pinned digest cannot be pulled from it.
      const dnsmasq = DEFAULT_IMAGES.dnsmasq.split("@")[0] ?? "";
      expect(rows.get(dnsmasq)?.status).toBe("missing");
      expect(rows.get("redis:7.4-alpine")?.status).toBe("missing");
      expect(rows.get("mongo:7.0")?.status).toBe("missing");
      // Every row is one of the program's pins, each once.
      expect([...rows.keys()].sort()).toEqual(
        [
          "registry:2.8.3",
          "nginx:1.27-alpine",
          "jenkins/ssh-agent:6.10.0",
          "redis:7.4-alpine",
          "mongo:7.0",
          dnsmasq,
          DEFAULT_IMAGES.holder.split("@")[0] ?? "",
          DEFAULT_IMAGES.nodeExporter.split("@")[0] ?? "",
        ].sort(),
      );
      expect(r.out).toMatch(/8 pins: 1 current, 1 outdated, 6 missing, 0 lookup errors/);
    });

    it("finds a pin current when its tag still points to it", async () => {
      const ok = await checkPin(`registry:2.8.3@${digests.registry}`, { registry, tlsVerify: false });
      expect(ok).toEqual({
        ref: `registry:2.8.3@${digests.registry}`,
        status: "current",
        tagDigest: digests.registry,
      });
    });

    it("reports a registry it cannot reach as a lookup error, exit 1", async () => {
      const closed = `127.0.0.1:${await freePort()}`;
      const r = await cli(root, "images", "check", "testing", "--registry", closed, "--insecure");
      expect(r.code).toBe(1);
      expect(r.out).toMatch(/8 pins: 0 current, 0 outdated, 0 missing, 8 lookup errors/);
    });

    it("refuses a --registry that is not host[:port]", async () => {
      const r = await cli(root, "images", "check", "testing", "--registry", "http://x/");
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/--registry must be host or host:port/);
    });
  },
);
