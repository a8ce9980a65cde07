import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { request } from "node:https";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bcryptSaltFrom, htpasswdEntry, renderHtpasswd } from "../../renderers/htpasswd.ts";
import { renderNginxConfig, type NginxConfigInput } from "../../renderers/nginx.ts";
import { RenderError } from "../../renderers/common.ts";
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

const HOST = "registry.berth.test";

const base: NginxConfigInput = {
  serverName: HOST,
  tlsCertificatePath: "/etc/nginx/tls/registry.crt",
  tlsKeyPath: "/etc/nginx/tls/registry.key",
  htpasswdPath: "/etc/nginx/htpasswd",
  upstream: "registry:5000",
};

const withMirror: NginxConfigInput = {
  ...base,
  mirror: { port: 5443, upstream: "registry-mirror:5000", allowCidrs: ["10.20.0.0/16", "127.0.0.1"] },
};

describe("renderNginxConfig", () => {
  it("is deterministic and matches the reviewed snapshot", async () => {
    expect(renderNginxConfig(withMirror)).toBe(renderNginxConfig(structuredClone(withMirror)));
    await expect(renderNginxConfig(withMirror)).toMatchFileSnapshot("./__snapshots__/nginx.conf.txt");
  });

  it("has the directives the registry needs", () => {
    const conf = renderNginxConfig(base);
    for (const line of [
      "listen 443 ssl;",
      "ssl_protocols TLSv1.2 TLSv1.3;",
      "client_max_body_size 0;",
      "chunked_transfer_encoding on;",
      "auth_basic_user_file /etc/nginx/htpasswd;",
      "add_header 'Docker-Distribution-Api-Version' $berth_docker_api_version always;",
      "proxy_set_header Host $http_host;",
      "proxy_set_header X-Real-IP $remote_addr;",
      "proxy_set_header X-Forwarded-For $remote_addr;",
      "proxy_set_header X-Forwarded-Proto $scheme;",
      "proxy_read_timeout 900;",
      "pid /var/run/nginx.pid;",
      "error_log /dev/stderr warn;",
      "server registry:5000;",
    ]) {
      expect(conf).toContain(line);
    }
    expect(conf).not.toMatch(/^\s*daemon /m);
    expect(conf).not.toContain("berth_mirror");
    expect(conf.endsWith("}\n")).toBe(true);
  });

  it("renders the mirror server read-only and address-restricted, without basic auth", () => {
    const conf = renderNginxConfig(withMirror);
    const mirror = conf.slice(conf.indexOf("# Pull-through mirror"));
    expect(mirror).toContain("listen 5443 ssl;");
    expect(mirror).toContain("allow 10.20.0.0/16;\n            allow 127.0.0.1;\n            deny all;");
    expect(mirror).toContain("limit_except GET HEAD {\n                deny all;\n            }");
    expect(mirror).not.toMatch(/auth_basic (?!off;)/);
    expect(mirror).toContain("proxy_pass http://berth_mirror;");
  });

  it("binds a given address, IPv6 included", () => {
    expect(renderNginxConfig({ ...base, listenAddress: "127.0.0.1", listenPort: 8443 })).toContain(
      "listen 127.0.0.1:8443 ssl;",
    );
    expect(renderNginxConfig({ ...base, listenAddress: "::1" })).toContain("listen [::1]:443 ssl;");
  });

  it.each<[string, Partial<NginxConfigInput>, RegExp]>([
    ["a server name with a space", { serverName: "a b" }, /serverName/],
    ["a path with ;", { htpasswdPath: "/etc/nginx/x;evil" }, /htpasswdPath/],
    ["a relative path", { tlsKeyPath: "key.pem" }, /tlsKeyPath/],
    ["a path with ..", { tlsCertificatePath: "/etc/../root/x" }, /tlsCertificatePath/],
    ["an upstream without port", { upstream: "registry" }, /upstream/],
    ["a port out of range", { listenPort: 70000 }, /listenPort/],
    ["a realm with a quote", { authRealm: 'x"y' }, /authRealm/],
    ["a non-IP listen address", { listenAddress: "localhost" }, /listenAddress/],
    [
      "a bad mirror CIDR",
      { mirror: { port: 5443, upstream: "m:5000", allowCidrs: ["10.0.0.0/33"] } },
      /allowCidrs/,
    ],
    [
      "an empty mirror allow list",
      { mirror: { port: 5443, upstream: "m:5000", allowCidrs: [] } },
      /allowCidrs/,
    ],
    [
      "a mirror on the registry port",
      { mirror: { port: 443, upstream: "m:5000", allowCidrs: ["::1"] } },
      /mirror.port/,
    ],
  ])("refuses %s", (_what, patch, field) => {
    expect(() => renderNginxConfig({ ...base, ...patch })).toThrow(RenderError);
    expect(() => renderNginxConfig({ ...base, ...patch })).toThrow(field);
  });
});

/** TLS material, an htpasswd made by our renderer, and a config pointing into `dir`. */
function prepare(dir: string, port: number, upstreamPort: number, mirrorPort?: number): string {
  // Workers run as nobody when nginx starts as root: they must read the htpasswd file.
  chmodSync(dir, 0o755);
  const openssl = toolPath(tools.openssl);
  const r = run(openssl, [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-days",
    "2",
    "-subj",
    `/CN=${HOST}`,
    "-addext",
    `subjectAltName=DNS:${HOST}`,
    "-keyout",
    join(dir, "tls.key"),
    "-out",
    join(dir, "tls.crt"),
  ]);
  expect(r.status, r.stderr).toBe(0);
  const htpasswd = renderHtpasswd([
    htpasswdEntry("jenkins", "s3cret-pass", { salt: bcryptSaltFrom("seed:jenkins", 10) }),
    htpasswdEntry("admin", "other-pass", { cost: 4 }),
  ]);
  writeFileSync(join(dir, "htpasswd"), htpasswd, { mode: 0o644 });
  mkdirSync(join(dir, "temp"), { recursive: true });
  const conf = renderNginxConfig({
    serverName: HOST,
    listenAddress: "127.0.0.1",
    listenPort: port,
    tlsCertificatePath: join(dir, "tls.crt"),
    tlsKeyPath: join(dir, "tls.key"),
    htpasswdPath: join(dir, "htpasswd"),
    upstream: `127.0.0.1:${upstreamPort}`,
    pidPath: join(dir, "nginx.pid"),
    errorLogPath: "stderr",
    accessLogPath: "off",
    tempDir: join(dir, "temp"),
    workerProcesses: 1,
    ...(mirrorPort === undefined
      ? {}
      : {
          mirror: { port: mirrorPort, upstream: `127.0.0.1:${upstreamPort}`, allowCidrs: ["127.0.0.1/32"] },
        }),
  });
  const path = join(dir, "nginx.conf");
  writeFileSync(path, conf);
  return path;
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

function httpsGet(
  port: number,
  path: string,
  ca: string,
  opts: { user?: string; password?: string; method?: string; localAddress?: string; userAgent?: string } = {},
): Promise<Reply> {
  const headers: Record<string, string> = {
    "User-Agent": opts.userAgent ?? "docker/27.3.1 go/go1.22.7 os/linux",
  };
  if (opts.user !== undefined) {
    headers.Authorization = `Basic ${Buffer.from(`${opts.user}:${opts.password ?? ""}`).toString("base64")}`;
  }
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path,
        method: opts.method ?? "GET",
        servername: HOST,
        ca,
        headers: { ...headers, Host: `${HOST}:${port}` },
        ...(opts.localAddress === undefined ? {} : { localAddress: opts.localAddress }),
        agent: false,
      },
      (res) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on("error", reject);
    req.setTimeout(10_000, () => req.destroy(new Error("timeout")));
    req.end();
  });
}

describeWithTools(
  "nginx accepts the rendered config (nginx -t)",
  { tools: [tools.nginx, tools.openssl] },
  () => {
    let tmp = { path: "", remove: () => {} };
    beforeAll(() => {
      tmp = tempDir("nginx-t");
    });
    afterAll(() => tmp.remove());

    it.each([
      ["registry only", false],
      ["registry and mirror", true],
    ])("%s", async (_name, mirror) => {
      const dir = join(tmp.path, mirror ? "with-mirror" : "plain");
      mkdirSync(dir);
      const conf = prepare(dir, await freePort(), await freePort(), mirror ? await freePort() : undefined);
      const r = run(toolPath(tools.nginx), ["-t", "-e", "stderr", "-p", dir, "-c", conf]);
      expect(r.stderr).toContain("syntax is ok");
      expect(r.stderr).toContain("test is successful");
      expect(r.status).toBe(0);
    });
  },
);

describeWithTools(
  "nginx serving the rendered config",
  { tools: [tools.nginx, tools.openssl, tools.htpasswd] },
  () => {
    let tmp = { path: "", remove: () => {} };
    let nginx: Daemon | undefined;
    let upstream: Server | undefined;
    let port = 0;
    let mirrorPort = 0;
    let ca = "";
    const seen: IncomingHttpHeaders[] = [];

    beforeAll(async () => {
      tmp = tempDir("nginx-run");
      upstream = createServer((req, res) => {
        seen.push(req.headers);
        if (req.url?.startsWith("/v2/")) {
          res.writeHead(200, {
            "Content-Type": "application/json",
            "Docker-Distribution-Api-Version": "registry/2.0",
          });
          res.end("{}");
        } else {
          res.writeHead(404);
          res.end();
        }
      });
      await new Promise<void>((resolve) => upstream?.listen(0, "127.0.0.1", resolve));
      const address = upstream.address();
      if (address === null || typeof address === "string") throw new Error("upstream has no port");
      port = await freePort();
      mirrorPort = await freePort();
      const conf = prepare(tmp.path, port, address.port, mirrorPort);
      ca = readFileSync(join(tmp.path, "tls.crt"), "utf8");
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
      await waitFor("nginx", async () => (await httpsGet(port, "/healthz", ca)).status === 200).catch(
        (e: unknown) => {
          throw new Error(`${String(e)}\n${nginx?.output() ?? ""}`);
        },
      );
    });

    afterAll(async () => {
      await nginx?.stop();
      await new Promise<void>((resolve) => (upstream ? upstream.close(() => resolve()) : resolve()));
      tmp.remove();
    });

    it("htpasswd (apache2-utils) verifies the bcrypt entry our renderer wrote", () => {
      const file = join(tmp.path, "htpasswd");
      expect(readFileSync(file, "utf8")).toMatch(/^admin:\$2y\$04\$.*\njenkins:\$2y\$10\$/);
      const ok = run(toolPath(tools.htpasswd), ["-vb", file, "jenkins", "s3cret-pass"]);
      expect(ok.stderr).toContain("Password for user jenkins correct");
      expect(ok.status).toBe(0);
      const bad = run(toolPath(tools.htpasswd), ["-vb", file, "jenkins", "wrong"]);
      expect(bad.status).not.toBe(0);
    });

    it("answers /healthz without credentials", async () => {
      const r = await httpsGet(port, "/healthz", ca);
      expect(r.status).toBe(200);
      expect(r.body).toBe("ok\n");
    });

    it("asks for credentials on /v2/, with the API version header docker looks for", async () => {
      const r = await httpsGet(port, "/v2/", ca);
      expect(r.status).toBe(401);
      expect(r.headers["www-authenticate"]).toBe('Basic realm="Berth registry"');
      expect(r.headers["docker-distribution-api-version"]).toBe("registry/2.0");
    });

    it("refuses a wrong password and an unknown user", async () => {
      expect((await httpsGet(port, "/v2/", ca, { user: "jenkins", password: "wrong" })).status).toBe(401);
      expect((await httpsGet(port, "/v2/", ca, { user: "nobody", password: "s3cret-pass" })).status).toBe(
        401,
      );
    });

    it("proxies an authenticated request with the forwarding headers", async () => {
      seen.length = 0;
      const r = await httpsGet(port, "/v2/", ca, { user: "jenkins", password: "s3cret-pass" });
      expect(r.status).toBe(200);
      expect(r.body).toBe("{}");
      // Exactly once: nginx adds it only when the upstream did not.
      expect(r.headers["docker-distribution-api-version"]).toBe("registry/2.0");
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatchObject({
        host: `${HOST}:${port}`,
        "x-forwarded-proto": "https",
        "x-real-ip": "127.0.0.1",
        "x-forwarded-for": "127.0.0.1",
      });
      expect((await httpsGet(port, "/v2/", ca, { user: "admin", password: "other-pass" })).status).toBe(200);
    });

    it("turns away docker clients older than 1.6", async () => {
      const auth = { user: "jenkins", password: "s3cret-pass" };
      expect(
        (await httpsGet(port, "/v2/", ca, { ...auth, userAgent: "docker/1.5.0 go/go1.4.1" })).status,
      ).toBe(404);
      expect((await httpsGet(port, "/v2/", ca, { ...auth, userAgent: "Go 1.1 package http" })).status).toBe(
        404,
      );
      expect(
        (await httpsGet(port, "/v2/", ca, { ...auth, userAgent: "docker/1.13.1 go/go1.7" })).status,
      ).toBe(200);
    });

    it("serves nothing outside /v2/ and /healthz", async () => {
      expect((await httpsGet(port, "/", ca)).status).toBe(404);
    });

    it("mirror: lets allowed addresses pull without credentials", async () => {
      const r = await httpsGet(mirrorPort, "/v2/", ca);
      expect(r.status).toBe(200);
      expect(r.headers["docker-distribution-api-version"]).toBe("registry/2.0");
      expect((await httpsGet(mirrorPort, "/v2/", ca, { method: "HEAD" })).status).toBe(200);
    });

    it("mirror: refuses pushes", async () => {
      expect((await httpsGet(mirrorPort, "/v2/x/blobs/uploads/", ca, { method: "POST" })).status).toBe(403);
      expect((await httpsGet(mirrorPort, "/v2/x/manifests/latest", ca, { method: "PUT" })).status).toBe(403);
    });

    it("mirror: refuses addresses outside allowCidrs", async () => {
      // Loopback accepts any 127/8 source; 127.0.0.2 is not in the allowed 127.0.0.1/32.
      const r = await httpsGet(mirrorPort, "/v2/", ca, { localAddress: "127.0.0.2" });
      expect(r.status).toBe(403);
    });
  },
);
