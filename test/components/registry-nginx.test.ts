/**
 * The registry's nginx as the program deploys it (the real program for `testing`, under Pulumi's
 * mocks): its uploaded nginx.conf resolves the registry per request through Docker's embedded DNS
 * (so a replaced registry at a new address is reached without restarting nginx), and its health
 * check goes through nginx to the registry (so nginx is unhealthy when the registry is dead).
 * The behaviour itself is proven by real nginx in test/renderers/nginx.test.ts and on a real engine
 * in test/e2e/services.test.ts.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { loadStack } from "../../config/load.ts";
import { PROJECT_ROOT } from "../../config/root.ts";
import { plain, runConfig, type StackRun } from "../../plan/run.ts";

const CONTAINER = "docker:index/container:Container";
let run: StackRun;

beforeAll(async () => {
  run = await runConfig(loadStack(PROJECT_ROOT, "production"));
}, 60_000);

const container = (name: string) => {
  const c = run.resources.find((r) => r.type === CONTAINER && r.inputs.name === name);
  if (!c) throw new Error(`no container ${name}`);
  return c;
};

describe("registry-nginx", () => {
  it("uploads an nginx.conf that resolves the registries per request through Docker's embedded DNS", () => {
    const uploads = container("registry-nginx").inputs.uploads as { file: string; content: unknown }[];
    const conf = String(plain(uploads.find((u) => u.file === "/etc/nginx/nginx.conf")?.content));
    expect(conf).toContain("resolver 127.0.0.11 valid=1s ipv6=off;");
    expect(conf).not.toMatch(/^\s*upstream /m);
    expect(conf).toContain("set $berth_registry registry:5000;");
    // production has the pull-through cache: its mirror is resolved the same way.
    expect(conf).toContain("set $berth_mirror registry-mirror:5000;");
    const health = conf.slice(conf.indexOf("location = /healthz {"));
    expect(health.slice(0, health.indexOf("\n        }\n"))).toContain(
      "proxy_pass http://$berth_registry/v2/;",
    );
  });

  it("is health-checked through nginx to the registry (/healthz), on the registry's network name", () => {
    const nginx = container("registry-nginx");
    const hc = (nginx.inputs.healthcheck as { tests: string[] }).tests;
    expect(hc).toEqual([
      "CMD",
      "wget",
      "-q",
      "--no-check-certificate",
      "-O",
      "/dev/null",
      "https://127.0.0.1/healthz",
    ]);
    // The names nginx resolves are the registries' aliases on the network they share with nginx.
    const aliases = (name: string) =>
      (container(name).inputs.networksAdvanced as { name: string; aliases?: string[] }[]).flatMap(
        (n) => n.aliases ?? [],
      );
    expect(aliases("registry")).toContain("registry");
    expect(aliases("registry-mirror")).toContain("registry-mirror");
  });

  it("carries the maintenance gate on a tmpfs, and the registry runs without the blob descriptor cache", () => {
    // renderers/registry-gc.ts: berth-registry-gc writes its refusal into that tmpfs.
    expect(container("registry-nginx").inputs.tmpfs).toEqual({
      "/etc/nginx/berth/maintenance": "mode=0755,size=64k",
    });
    const uploads = container("registry-nginx").inputs.uploads as { file: string; content: unknown }[];
    const conf = String(plain(uploads.find((u) => u.file === "/etc/nginx/nginx.conf")?.content));
    expect(conf).toContain("if (-f /etc/nginx/berth/maintenance/refusal.json) {");
    const config = (name: string) =>
      String(
        plain(
          (container(name).inputs.uploads as { file: string; content: unknown }[]).find(
            (u) => u.file === "/etc/docker/registry/config.yml",
          )?.content,
        ),
      );
    expect(config("registry")).not.toContain("blobdescriptor");
    // The pull-through mirror is never garbage-collected: it keeps its cache.
    expect(config("registry-mirror")).toContain("blobdescriptor: inmemory");
  });
});
