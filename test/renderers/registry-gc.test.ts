/**
 * Registry upkeep (renderers/registry-gc.ts): the schedule and pattern checks, the rendered files,
 * and the rendered script run on a real registry (Debian's docker-registry 2.8) behind the real
 * nginx with the program's rendered nginx config, filled by skopeo (test/support/oci.ts).
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bcryptSaltFrom, htpasswdEntry, renderHtpasswd } from "../../renderers/htpasswd.ts";
import { renderNginxConfig } from "../../renderers/nginx.ts";
import { renderRegistryConfig } from "../../renderers/registry.ts";
import {
  DEFAULT_PROTECTED_TAGS,
  REGISTRY_UPKEEP_DEFAULTS,
  parseGcSchedule,
  protectedPatternIssue,
  renderRegistryGcConf,
  renderRegistryGcScript,
  renderRegistryGcUnits,
} from "../../renderers/registry-gc.ts";
import { ociImage } from "../support/oci.ts";
import { requireTools } from "../support/tools.ts";
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
} from "./helpers.ts";
import { selfSignedCert } from "../../bench/support/daemons.ts";

describe("parseGcSchedule", () => {
  it.each([
    ["Sun *-*-* 04:00:00", [6 * 1440 + 240]],
    ["Sat,Sun 03:30", [5 * 1440 + 210, 6 * 1440 + 210]],
    ["Mon..Wed *-*-* 23:15", [1395, 1440 + 1395, 2880 + 1395]],
    ["*-*-* 01:00", [60, 1500, 2940, 4380, 5820, 7260, 8700]],
    ["daily", [0, 1440, 2880, 4320, 5760, 7200, 8640]],
    ["weekly", [0]],
  ])("%s", (expr, starts) => {
    expect(parseGcSchedule(expr)).toEqual({ starts });
  });

  it.each(["Sun 25:00", "Funday 04:00", "Sun..Mon 04:00", "*-*-01 04:00", "hourly", "Sun 04:00:30", ""])(
    "refuses %j",
    (expr) => {
      expect(typeof parseGcSchedule(expr)).toBe("string");
    },
  );
});

describe("protectedPatternIssue", () => {
  it("accepts the defaults and POSIX extended expressions", () => {
    for (const p of [...DEFAULT_PROTECTED_TAGS, "^release-", "^(main|master)$", "^[a-z]{3,}$"])
      expect(protectedPatternIssue(p)).toBeUndefined();
  });
  it.each([
    ["^v\\d+$", /\\d/],
    ["(?!x)", /\(\?/],
    ["^a+?$", /lazy/],
    ["^(unclosed", /not a valid regular expression/],
    ["", /empty/],
  ])("refuses %j", (p, why) => {
    expect(protectedPatternIssue(p)).toMatch(why);
  });
});

describe("the rendered conf, units and nginx gate", () => {
  it("writes every setting, one protect= line per pattern", () => {
    expect(renderRegistryGcConf(REGISTRY_UPKEEP_DEFAULTS)).toBe(
      [
        "# Berth: registry retention and garbage collection (berth-registry-gc). Rendered, first boot.",
        "# keep_tags: tags kept per repository, most recently pushed first",
        "keep_tags=10",
        "# window_minutes: how long writes are refused at most",
        "window_minutes=60",
        "# protect: tags matching any of these POSIX extended regular expressions are always kept",
        "protect=^v?[0-9]+\\.[0-9]+(\\.[0-9]+)?$",
        "protect=^latest$",
        "",
      ].join("\n"),
    );
    expect(() => renderRegistryGcConf({ ...REGISTRY_UPKEEP_DEFAULTS, keepTags: 0 })).toThrow(/keepTags/);
    expect(() => renderRegistryGcConf({ ...REGISTRY_UPKEEP_DEFAULTS, protectedTags: ["\\d"] })).toThrow(
      /\\d/,
    );
  });

  it("times the service out at the end of the window and always ends maintenance", () => {
    const [service, timer] = renderRegistryGcUnits("/usr/local/bin", {
      ...REGISTRY_UPKEEP_DEFAULTS,
      gcSchedule: "Sat 05:00",
      gcWindowMinutes: 45,
    });
    expect(service?.contents).toContain("ExecStart=/usr/local/bin/berth-registry-gc\n");
    expect(service?.contents).toContain("ExecStopPost=/usr/local/bin/berth-registry-gc --end\n");
    expect(service?.contents).toContain("TimeoutStartSec=45min\n");
    expect(timer?.contents).toContain("OnCalendar=Sat 05:00\n");
    expect(timer?.enabled).toBe(true);
  });

  it("nginx refuses writes only with a maintenance directory, before proxying", () => {
    const base = {
      serverName: "registry.berth.test",
      tlsCertificatePath: "/c",
      tlsKeyPath: "/k",
      htpasswdPath: "/h",
      upstream: "registry:5000",
    };
    expect(renderNginxConfig(base)).not.toContain("berth_maintenance");
    const conf = renderNginxConfig({ ...base, maintenanceDir: "/etc/nginx/berth/maintenance" });
    expect(conf).toContain("if (-f /etc/nginx/berth/maintenance/refusal.json) {");
    expect(conf).toContain('if ($berth_write_refused ~ "^on (POST|PUT|PATCH|DELETE)$") {');
    expect(conf).toContain("alias /etc/nginx/berth/maintenance/refusal.json;");
    expect(conf.indexOf("return 405;")).toBeLessThan(conf.indexOf("proxy_pass http://$berth_registry;"));
  });

  it("the registry's config has the blob descriptor cache only when asked for", () => {
    const secret = "0123456789abcdef0123";
    expect(renderRegistryConfig({ httpSecret: secret })).toContain(
      "  cache:\n    blobdescriptor: inmemory\n",
    );
    const off = renderRegistryConfig({ httpSecret: secret, blobDescriptorCache: "off" });
    expect(off).not.toContain("cache");
    expect(off).toContain("  delete:\n    enabled: true\n");
  });

  it("bash matches the default patterns as intended", () => {
    const script = `for t in 1.2 v1.2.3 v10.20 latest 1.2.3.4 v1 abc1234 latest-x release; do
      for re in "$@"; do [[ $t =~ $re ]] && { echo "$t"; break; }; done; done`;
    const r = spawnSync("bash", ["-c", script, "bash", ...DEFAULT_PROTECTED_TAGS], { encoding: "utf8" });
    expect(r.stdout.split("\n").filter(Boolean)).toEqual(["1.2", "v1.2.3", "v10.20", "latest"]);
  });
});

const analyze = requireTools("systemd-analyze", [{ tool: "systemd-analyze", debianPackage: "systemd" }]);
describe.skipIf(analyze.skip)("systemd-analyze calendar accepts the schedules validation accepts", () => {
  it.each([REGISTRY_UPKEEP_DEFAULTS.gcSchedule, "Sat,Sun 03:30", "Mon..Wed *-*-* 23:15", "daily", "weekly"])(
    "%s",
    (expr) => {
      expect(typeof parseGcSchedule(expr)).toBe("object");
      const r = spawnSync("systemd-analyze", ["calendar", expr], { encoding: "utf8" });
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
    },
  );
});

const HOST = "registry.berth.test";
const USER = "jenkins";
const PASSWORD = "gc-test-password";

/** Bytes of every file under `dir`. */
function bytesUnder(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += statSync(join(e.parentPath, e.name)).size;
  }
  return total;
}

describeWithTools(
  "berth-registry-gc on a real registry behind the real nginx",
  { tools: [tools.registry, tools.skopeo, tools.nginx, tools.openssl] },
  () => {
    let tmp = { path: "", remove: () => {} };
    let registry: Daemon | undefined;
    let nginx: Daemon | undefined;
    let registryAddr = "";
    let front = "";
    let storage = "";
    let registryConfig = "";
    let certDir = "";
    const digests: Record<string, string> = {};
    const images: Record<string, string> = {};
    const MiB = 1024 * 1024;

    const skopeo = (args: string[]) => run(toolPath(tools.skopeo), args, 120_000);
    const creds = () => ["--creds", `${USER}:${PASSWORD}`];
    /** Pushes the OCI layout `image` through nginx as berth/app:<tag>. */
    function push(image: string, repository: string, tag: string) {
      const digestFile = join(tmp.path, `digest-${repository.replace("/", "-")}-${tag}`);
      const r = skopeo([
        "copy",
        "--quiet",
        "--dest-cert-dir",
        certDir,
        "--dest-creds",
        `${USER}:${PASSWORD}`,
        "--digestfile",
        digestFile,
        `oci:${images[image] ?? ""}:latest`,
        `docker://${front}/${repository}:${tag}`,
      ]);
      return { ...r, digest: r.status === 0 ? readFileSync(digestFile, "utf8").trim() : "" };
    }
    /** Pulls `ref` through nginx (every blob) and returns its manifest digest, or the error. */
    function pull(ref: string): { status: number | null; digest: string; stderr: string } {
      mkdirSync(join(tmp.path, "pulled"), { recursive: true });
      const dest = join(tmp.path, "pulled", `${ref.replace(/[/:]/g, "_")}-${Date.now()}`);
      const r = skopeo([
        "copy",
        "--quiet",
        "--src-cert-dir",
        certDir,
        "--src-creds",
        `${USER}:${PASSWORD}`,
        `docker://${front}/${ref}`,
        `dir:${dest}`,
      ]);
      if (r.status !== 0) return { status: r.status, digest: "", stderr: r.stderr };
      const i = skopeo([
        "inspect",
        "--cert-dir",
        certDir,
        ...creds(),
        "--format",
        "{{.Digest}}",
        `docker://${front}/${ref}`,
      ]);
      return { status: i.status, digest: i.stdout.trim(), stderr: i.stderr };
    }

    beforeAll(async () => {
      tmp = tempDir("registry-gc");
      chmodSync(tmp.path, 0o755);
      storage = join(tmp.path, "data");
      certDir = join(tmp.path, "certs");
      mkdirSync(certDir);
      // The registry as the program configures it (no blob descriptor cache), on loopback.
      registryAddr = `127.0.0.1:${await freePort()}`;
      registryConfig = join(tmp.path, "config.yml");
      writeFileSync(
        registryConfig,
        renderRegistryConfig({
          httpSecret: "registry-gc-test-secret",
          addr: registryAddr,
          rootDirectory: storage,
          blobDescriptorCache: "off",
        }),
      );
      registry = startDaemon(toolPath(tools.registry), ["serve", registryConfig]);
      await waitFor(
        "docker-registry",
        async () => (await fetch(`http://${registryAddr}/v2/`)).status === 200,
      ).catch((e: unknown) => {
        throw new Error(`${String(e)}\n${registry?.output() ?? ""}`);
      });

      // nginx in front, the program's config with the maintenance gate (TLS for the name and 127.0.0.1).
      selfSignedCert(toolPath(tools.openssl), {
        name: HOST,
        ips: ["127.0.0.1"],
        keyPath: join(tmp.path, "tls.key"),
        certPath: join(certDir, "ca.crt"),
      });
      writeFileSync(
        join(tmp.path, "htpasswd"),
        renderHtpasswd([htpasswdEntry(USER, PASSWORD, { salt: bcryptSaltFrom("seed", 4), cost: 4 })]),
        { mode: 0o644 },
      );
      mkdirSync(join(tmp.path, "temp"));
      mkdirSync(join(tmp.path, "maintenance"), { mode: 0o755 });
      const port = await freePort();
      front = `127.0.0.1:${port}`;
      const conf = join(tmp.path, "nginx.conf");
      writeFileSync(
        conf,
        renderNginxConfig({
          serverName: HOST,
          listenAddress: "127.0.0.1",
          listenPort: port,
          tlsCertificatePath: join(certDir, "ca.crt"),
          tlsKeyPath: join(tmp.path, "tls.key"),
          htpasswdPath: join(tmp.path, "htpasswd"),
          upstream: registryAddr,
          pidPath: join(tmp.path, "nginx.pid"),
          errorLogPath: "stderr",
          accessLogPath: "off",
          tempDir: join(tmp.path, "temp"),
          workerProcesses: 1,
          maintenanceDir: join(tmp.path, "maintenance"),
        }),
      );
      nginx = startDaemon(toolPath(tools.nginx), [
        "-e",
        "stderr",
        "-p",
        tmp.path,
        "-c",
        conf,
        "-g",
        "daemon off;",
      ]);
      await waitFor("nginx", async () => {
        const v = run("curl", [
          "-s",
          "-o",
          "/dev/null",
          "-w",
          "%{http_code}",
          "--cacert",
          join(certDir, "ca.crt"),
          `https://${front}/healthz`,
        ]);
        return v.stdout === "200";
      }).catch((e: unknown) => {
        throw new Error(`${String(e)}\n${nginx?.output() ?? ""}`);
      });

      // Revisions: a shared 1 MiB base layer and 2 MiB of their own each.
      const base = randomBytes(MiB);
      for (const name of ["A", "B", "C", "D", "E", "O"]) {
        images[name] = join(tmp.path, "oci", name);
        ociImage(images[name], base, randomBytes(2 * MiB));
      }
      // Oldest first. keep_tags=2: c4 and c3 stay, v1.0 is protected, "early" points at c4's digest.
      for (const [image, tag] of [
        ["A", "v1.0"],
        ["E", "early"],
        ["B", "c1"],
        ["C", "c2"],
        ["D", "c3"],
        ["E", "c4"],
      ] as const) {
        const p = push(image, "berth/app", tag);
        expect(p.status, p.stderr).toBe(0);
        digests[tag] = p.digest;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const o = push("O", "berth/other", "only");
      expect(o.status, o.stderr).toBe(0);
      digests.only = o.digest;
    }, 180_000);

    afterAll(async () => {
      await nginx?.stop();
      await registry?.stop();
      tmp.remove();
    });

    it("keeps the last tags, protected tags and shared digests; deletes the rest; disk use drops; writes are refused meanwhile", async () => {
      expect(digests.early).toBe(digests.c4);
      const conf = join(tmp.path, "registry-gc.conf");
      writeFileSync(
        conf,
        renderRegistryGcConf({ ...REGISTRY_UPKEEP_DEFAULTS, keepTags: 2, gcWindowMinutes: 30 }),
      );
      const script = join(tmp.path, "berth-registry-gc");
      writeFileSync(script, renderRegistryGcScript(), { mode: 0o755 });
      const env = {
        ...process.env,
        BERTH_REGISTRY_GC_CONF: conf,
        BERTH_REGISTRY_URL: `http://${registryAddr}`,
        BERTH_REGISTRY_STORAGE: storage,
        BERTH_REGISTRY_COMMAND: toolPath(tools.registry),
        BERTH_REGISTRY_CONFIG: registryConfig,
        BERTH_NGINX_EXEC: "",
        BERTH_NGINX_MAINTENANCE_DIR: join(tmp.path, "maintenance"),
        BERTH_REGISTRY_GC_GRACE_SECONDS: "20",
      };

      // The dry run changes nothing.
      const dry = spawnSync(script, ["--dry-run"], { env, encoding: "utf8" });
      expect(dry.status, dry.stderr).toBe(0);
      expect(dry.stdout).toContain(`would delete berth/app@${digests.c2} (tags: c2)`);
      expect(existsSync(join(tmp.path, "maintenance", "refusal.json"))).toBe(false);

      const before = bytesUnder(storage);
      const child = spawn(script, [], { env, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr.on("data", (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
      try {
        await waitFor("maintenance on", () => Promise.resolve(out.includes("maintenance on until")));
        // During the window: a push is refused with the message, a pull works.
        const refused = push("C", "berth/app", "c5");
        expect(refused.status).not.toBe(0);
        expect(refused.stderr).toMatch(
          /registry maintenance \(garbage collection\) until \d{4}-\d\d-\d\d \d\d:\d\d \w+: pushes and deletes are refused, pulls work/,
        );
        const during = pull("berth/app:c4");
        expect(during.stderr).toBe("");
        expect(during.digest).toBe(digests.c4);
      } finally {
        expect(await exited, out).toBe(0);
      }
      expect(out).toContain(`deleted berth/app@${digests.c2} (tags: c2)`);
      expect(out).toContain(`deleted berth/app@${digests.c1} (tags: c1)`);
      expect(out).toContain("kept berth/app:early (same digest as a kept tag)");
      expect(out).toContain("retention: 2 manifests deleted");
      // Two revisions' layer, config and manifest blobs.
      expect(out).toMatch(/garbage-collect: \d+ blobs marked, 6 blobs and 0 manifests eligible for deletion/);
      expect(out).toContain("maintenance off");
      expect(existsSync(join(tmp.path, "maintenance", "refusal.json"))).toBe(false);

      // Two revisions' own layers (2 MiB each) are gone from disk.
      const after = bytesUnder(storage);
      expect(before - after).toBeGreaterThan(4 * MiB);
      expect(before - after).toBeLessThan(5 * MiB);

      // Kept tags pull with their digests; deleted ones are gone.
      for (const tag of ["c4", "c3", "v1.0", "early"])
        expect(pull(`berth/app:${tag}`).digest).toBe(digests[tag]);
      expect(pull("berth/other:only").digest).toBe(digests.only);
      for (const tag of ["c1", "c2"]) {
        const gone = pull(`berth/app:${tag}`);
        expect(gone.status).not.toBe(0);
        expect(gone.stderr).toMatch(/manifest unknown/);
      }

      // After the window the refused push succeeds: C's own layer was collected, and the registry
      // (no blob descriptor cache) asks for it again instead of claiming it still has it.
      const again = push("C", "berth/app", "c5");
      expect(again.status, again.stderr).toBe(0);
      expect(again.digest).toBe(digests.c2);
      expect(pull("berth/app:c5").digest).toBe(digests.c2);
    }, 240_000);
  },
);
