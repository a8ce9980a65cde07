import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { RenderError } from "../../renderers/common.ts";
import { bcryptSaltFrom, htpasswdEntry, renderHtpasswd } from "../../renderers/htpasswd.ts";
import { renderRegistryConfig, type RegistryConfigInput } from "../../renderers/registry.ts";
import {
  describeWithTools,
  freePort,
  startDaemon,
  tempDir,
  toolPath,
  tools,
  waitFor,
  type Daemon,
} from "./helpers.ts";

const SECRET = "0123456789abcdef-not-a-real-secret";

describe("renderRegistryConfig", () => {
  it("renders the expected structure", async () => {
    const text = renderRegistryConfig({ httpSecret: SECRET });
    expect(parse(text)).toEqual({
      version: 0.1,
      log: { level: "info", formatter: "text", fields: { service: "registry" } },
      storage: {
        filesystem: { rootdirectory: "/var/lib/registry" },
        cache: { blobdescriptor: "inmemory" },
        delete: { enabled: true },
      },
      http: { addr: ":5000", secret: SECRET, headers: { "X-Content-Type-Options": ["nosniff"] } },
      health: { storagedriver: { enabled: true, interval: "10s", threshold: 3 } },
    });
    expect(text).not.toMatch(/^auth:/m);
    await expect(text).toMatchFileSnapshot("./__snapshots__/registry-config.yml.txt");
  });

  it("is deterministic", () => {
    const input: RegistryConfigInput = {
      httpSecret: SECRET,
      proxy: { remoteUrl: "https://registry-1.docker.io" },
    };
    expect(renderRegistryConfig(input)).toBe(renderRegistryConfig(structuredClone(input)));
  });

  it("pull-through mode: proxy section, no delete", () => {
    const doc = parse(
      renderRegistryConfig({
        httpSecret: SECRET,
        proxy: { remoteUrl: "https://registry-1.docker.io", username: "bot", password: "p: #'\"\\x" },
      }),
    ) as { proxy: unknown; storage: Record<string, unknown> };
    expect(doc.proxy).toEqual({
      remoteurl: "https://registry-1.docker.io",
      username: "bot",
      password: "p: #'\"\\x",
    });
    expect(doc.storage.delete).toBeUndefined();
  });

  it("quotes a secret with YAML-significant characters exactly", () => {
    const secret = "a: b # c '\"\\ {x} [y] &z *w !v %u @t `s ünï ~";
    expect(
      (parse(renderRegistryConfig({ httpSecret: secret })) as { http: { secret: string } }).http.secret,
    ).toBe(secret);
  });

  it.each<[string, Partial<RegistryConfigInput>, RegExp]>([
    ["a short secret", { httpSecret: "short" }, /httpSecret/],
    ["a secret with a newline", { httpSecret: `${SECRET}\n` }, /httpSecret.*control/],
    ["a bad addr", { addr: "5000" }, /addr/],
    ["a relative root directory", { rootDirectory: "var/lib/registry" }, /rootDirectory/],
    ["a non-http remote URL", { proxy: { remoteUrl: "ftp://x" } }, /remoteUrl/],
    ["credentials in the remote URL", { proxy: { remoteUrl: "https://u:p@x" } }, /remoteUrl/],
    ["a username without password", { proxy: { remoteUrl: "https://x", username: "u" } }, /both/],
    ["a health interval of 0", { healthIntervalSeconds: 0 }, /healthIntervalSeconds/],
  ])("refuses %s", (_what, patch, message) => {
    const call = () => renderRegistryConfig({ httpSecret: SECRET, ...patch });
    expect(call).toThrow(RenderError);
    expect(call).toThrow(message);
  });
});

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function http(port: number, method: string, path: string, body?: Buffer, auth?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (body !== undefined) {
      headers["Content-Type"] = "application/octet-stream";
      headers["Content-Length"] = String(body.length);
    }
    if (auth !== undefined) headers.Authorization = `Basic ${Buffer.from(auth).toString("base64")}`;
    const req = request({ host: "127.0.0.1", port, method, path, headers, agent: false }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on("error", reject);
    req.setTimeout(10_000, () => req.destroy(new Error("timeout")));
    req.end(body);
  });
}

/** Starts docker-registry on a rendered config; `extra` is appended YAML (test-only sections). */
async function startRegistry(
  dir: string,
  input: Omit<RegistryConfigInput, "httpSecret" | "addr" | "rootDirectory">,
  extra = "",
): Promise<{ daemon: Daemon; port: number }> {
  const port = await freePort();
  const config = join(dir, "config.yml");
  writeFileSync(
    config,
    renderRegistryConfig({
      ...input,
      httpSecret: SECRET,
      addr: `127.0.0.1:${port}`,
      rootDirectory: join(dir, "data"),
    }) + extra,
  );
  const daemon = startDaemon(toolPath(tools.registry), ["serve", config]);
  await waitFor("docker-registry", async () => {
    const r = await http(port, "GET", "/v2/");
    return r.status === 200 || r.status === 401;
  }).catch((e: unknown) => {
    throw new Error(`${String(e)}\n${daemon.output()}`);
  });
  return { daemon, port };
}

describeWithTools(
  "docker-registry (distribution 2.8) runs the rendered config",
  { tools: [tools.registry] },
  () => {
    let tmp = { path: "", remove: () => {} };
    const daemons: Daemon[] = [];
    const servers: Server[] = [];
    beforeAll(() => {
      tmp = tempDir("registry");
    });
    afterAll(async () => {
      for (const d of daemons) await d.stop();
      for (const srv of servers) await new Promise((resolve) => srv.close(resolve));
      tmp.remove();
    });

    function subdir(name: string): string {
      const dir = join(tmp.path, name);
      mkdirSync(dir);
      return dir;
    }

    it("serves /v2/, accepts a blob push and deletes it (delete enabled)", async () => {
      const { daemon, port } = await startRegistry(subdir("plain"), {});
      daemons.push(daemon);
      const v2 = await http(port, "GET", "/v2/");
      expect(v2.status).toBe(200);
      expect(v2.headers["docker-distribution-api-version"]).toBe("registry/2.0");

      const blob = Buffer.from("berth test layer\n");
      const digest = `sha256:${createHash("sha256").update(blob).digest("hex")}`;
      const start = await http(port, "POST", "/v2/berth/test/blobs/uploads/");
      expect(start.status, start.body).toBe(202);
      const location = new URL(String(start.headers.location), `http://127.0.0.1:${port}`);
      location.searchParams.set("digest", digest);
      const put = await http(port, "PUT", `${location.pathname}${location.search}`, blob);
      expect(put.status, put.body).toBe(201);
      expect((await http(port, "HEAD", `/v2/berth/test/blobs/${digest}`)).status).toBe(200);
      const del = await http(port, "DELETE", `/v2/berth/test/blobs/${digest}`);
      expect(del.status, del.body).toBe(202);
      expect((await http(port, "HEAD", `/v2/berth/test/blobs/${digest}`)).status).toBe(404);
    });

    it("pull-through mode starts and refuses pushes", async () => {
      // distribution 2.8 pings the remote's /v2/ at start and panics if it cannot: give it a local stand-in.
      const remote = createServer((_req, res) => {
        res.writeHead(200, { "Docker-Distribution-Api-Version": "registry/2.0" });
        res.end("{}");
      });
      servers.push(remote);
      await new Promise<void>((resolve) => remote.listen(0, "127.0.0.1", resolve));
      const address = remote.address();
      if (address === null || typeof address === "string") throw new Error("no port");
      const { daemon, port } = await startRegistry(subdir("proxy"), {
        proxy: { remoteUrl: `http://127.0.0.1:${address.port}` },
      });
      daemons.push(daemon);
      expect((await http(port, "GET", "/v2/")).status).toBe(200);
      const push = await http(port, "POST", "/v2/library/x/blobs/uploads/", Buffer.alloc(0));
      expect(push.status).toBe(405);
      expect(push.body).toContain("UNSUPPORTED");
    });

    it("Go's bcrypt in the registry accepts our $2y$ htpasswd lines", async () => {
      const dir = subdir("auth");
      const file = join(tmp.path, "htpasswd");
      writeFileSync(
        file,
        renderHtpasswd([htpasswdEntry("ci", "pa55", { salt: bcryptSaltFrom("registry-test", 5) })]),
      );
      const { daemon, port } = await startRegistry(
        dir,
        {},
        `auth:\n  htpasswd:\n    realm: test\n    path: ${file}\n`,
      );
      daemons.push(daemon);
      expect((await http(port, "GET", "/v2/")).status).toBe(401);
      expect((await http(port, "GET", "/v2/", undefined, "ci:wrong")).status).toBe(401);
      expect((await http(port, "GET", "/v2/", undefined, "ci:pa55")).status).toBe(200);
    });
  },
);
