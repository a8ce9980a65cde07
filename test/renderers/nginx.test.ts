import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { request } from "node:https";
import { Resolver } from "node:dns/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bcryptSaltFrom, htpasswdEntry, renderHtpasswd, sshaEntry } from "../../renderers/htpasswd.ts";

/** A password as Berth generates them: 32 letters and digits. */
const GENERATED = "q7Rk2LmZx9VbT4nWc8HsJ3pYd6FgA1eU";
import { renderNginxConfig, type NginxConfigInput } from "../../renderers/nginx.ts";
import { RenderError } from "../../renderers/common.ts";
import { selfSignedCert, startNginx as startRealNginx } from "../../bench/support/daemons.ts";
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
      "resolver 127.0.0.11 valid=1s ipv6=off;",
      "resolver_timeout 5s;",
      "set $berth_registry registry:5000;",
      "proxy_connect_timeout 5s;",
    ]) {
      expect(conf).toContain(line);
    }
    expect(conf).not.toMatch(/^\s*daemon /m);
    expect(conf).not.toContain("berth_mirror");
    // Layers stream through unbuffered, in 128 KiB reads rather than one 4 KiB page at a time
    // (docs/performance.md, "Registry under load").
    const v2 = conf.slice(conf.indexOf("location /v2/ {"), conf.indexOf("location = /healthz {"));
    for (const line of [
      "proxy_request_buffering off;",
      "proxy_buffering off;",
      "proxy_buffer_size 128k;",
      "proxy_http_version 1.1;",
      'proxy_set_header Connection "";',
    ]) {
      expect(v2).toContain(line);
    }
    expect(conf.endsWith("}\n")).toBe(true);
  });

  it("renders the mirror server read-only and address-restricted, without basic auth", () => {
    const conf = renderNginxConfig(withMirror);
    const mirror = conf.slice(conf.indexOf("# Pull-through mirror"));
    expect(mirror).toContain("listen 5443 ssl;");
    expect(mirror).toContain("allow 10.20.0.0/16;\n            allow 127.0.0.1;\n            deny all;");
    expect(mirror).toContain("limit_except GET HEAD {\n                deny all;\n            }");
    expect(mirror).not.toMatch(/auth_basic (?!off;)/);
    expect(mirror).toContain(
      "set $berth_mirror registry-mirror:5000;\n            proxy_pass http://$berth_mirror;",
    );
    expect(mirror).toContain("proxy_pass http://$berth_mirror/v2/;");
  });

  it("resolves the upstreams per request (a variable in proxy_pass), never once at start", () => {
    const conf = renderNginxConfig(withMirror);
    // An upstream block or a literal name in proxy_pass is resolved once, when nginx starts.
    expect(conf).not.toMatch(/^\s*upstream /m);
    expect(conf).not.toMatch(/^\s*server registry/m);
    const proxyPasses = conf.match(/^\s*proxy_pass .*$/gm)?.map((l) => l.trim());
    expect(proxyPasses).toEqual([
      "proxy_pass http://$berth_registry;",
      "proxy_pass http://$berth_registry/v2/;",
      "proxy_pass http://$berth_mirror;",
      "proxy_pass http://$berth_mirror/v2/;",
    ]);
    // Every location that proxies sets its variable itself, before proxy_pass.
    for (const block of conf.split(/\n\s*location /).slice(1)) {
      const pass = /proxy_pass http:\/\/\$(\w+)/.exec(block);
      if (!pass) continue;
      const set = block.indexOf(`set $${pass[1] ?? ""} `);
      expect(set, block).toBeGreaterThan(-1);
      expect(set).toBeLessThan(block.indexOf("proxy_pass"));
    }
    expect(renderNginxConfig({ ...base, resolver: "127.0.0.1:5353", resolverValidSeconds: 3 })).toContain(
      "resolver 127.0.0.1:5353 valid=3s ipv6=off;",
    );
    expect(renderNginxConfig({ ...base, resolver: "::1" })).toContain("resolver [::1] valid=1s ipv6=off;");
    expect(renderNginxConfig({ ...base, resolver: "[::1]:53" })).toContain("resolver [::1]:53 valid=1s");
  });

  it("proxies /healthz to the registry's /v2/, without credentials, GET and HEAD only", () => {
    const conf = renderNginxConfig(base);
    const health = conf.slice(conf.indexOf("location = /healthz {"));
    const body = health.slice(0, health.indexOf("\n        }\n"));
    expect(body).toContain("auth_basic off;");
    expect(body).toContain("limit_except GET HEAD {");
    expect(body).toContain("set $berth_registry registry:5000;");
    expect(body).toContain("proxy_pass http://$berth_registry/v2/;");
    expect(body).toContain("proxy_read_timeout 5s;");
    expect(body).not.toContain("return 200");
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
    ["a resolver by name", { resolver: "dns.example" }, /resolver/],
    ["a resolver with a bad port", { resolver: "127.0.0.1:70000" }, /resolver/],
    ["an IPv6 resolver with a port but no brackets", { resolver: "::1:53:x" }, /resolver/],
    ["a resolver cache of 0 s", { resolverValidSeconds: 0 }, /resolverValidSeconds/],
    ["a connect timeout of 0 s", { upstreamConnectTimeoutSeconds: 0 }, /upstreamConnectTimeoutSeconds/],
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

interface Prepared {
  /** TLS port of the registry server. */
  port: number;
  /** `host:port` of the registry. */
  upstream: string;
  mirrorPort?: number;
  /** Plain-HTTP port of the metrics server (registry metrics and nginx status). */
  metricsPort?: number;
  /** DNS server for upstream names (`address:port`); the rendered default otherwise. */
  resolver?: string;
}

/** TLS material, an htpasswd made by our renderer, and a config pointing into `dir`. */
function prepare(dir: string, { port, upstream, mirrorPort, metricsPort, resolver }: Prepared): string {
  // Workers run as nobody when nginx starts as root: they must read the htpasswd file.
  chmodSync(dir, 0o755);
  const openssl = toolPath(tools.openssl);
  selfSignedCert(openssl, {
    name: HOST,
    keyPath: join(dir, "tls.key"),
    certPath: join(dir, "tls.crt"),
  });
  const htpasswd = renderHtpasswd([
    htpasswdEntry("jenkins", "s3cret-pass", { salt: bcryptSaltFrom("seed:jenkins", 10) }),
    htpasswdEntry("admin", "other-pass", { cost: 4 }),
    // A generated password's line, as components/registry.ts writes it.
    sshaEntry("builder", GENERATED, "seed:builder"),
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
    upstream,
    ...(resolver === undefined ? {} : { resolver }),
    pidPath: join(dir, "nginx.pid"),
    errorLogPath: "stderr",
    accessLogPath: "off",
    tempDir: join(dir, "temp"),
    workerProcesses: 1,
    ...(mirrorPort === undefined
      ? {}
      : {
          mirror: { port: mirrorPort, upstream, allowCidrs: ["127.0.0.1/32"] },
        }),
    ...(metricsPort === undefined ? {} : { metrics: { port: metricsPort, upstream } }),
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

/**
 * Starts the real nginx on `conf` (prefix `dir`) and waits until its /healthz answers 200 over TLS;
 * the shared starter stops it again when it never does.
 */
function startNginx(dir: string, conf: string, port: number, ca: string): Promise<Daemon> {
  return startRealNginx(
    toolPath(tools.nginx),
    dir,
    conf,
    async () => (await httpsGet(port, "/healthz", ca)).status === 200,
  );
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
      const conf = prepare(dir, {
        port: await freePort(),
        upstream: `registry.berth.test:${await freePort()}`,
        ...(mirror ? { mirrorPort: await freePort() } : {}),
      });
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
    let metricsPort = 0;
    let ca = "";
    const seen: IncomingHttpHeaders[] = [];
    /** Method and URI of each request the upstream received, in order. */
    const paths: string[] = [];

    beforeAll(async () => {
      tmp = tempDir("nginx-run");
      upstream = createServer((req, res) => {
        seen.push(req.headers);
        paths.push(`${req.method ?? ""} ${req.url ?? ""}`);
        if (req.url === "/metrics") {
          // Stands for the registry's debug server behind nginx: the test is about nginx's proxying.
          res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4" });
          res.end("registry_storage_action_seconds_count 1\n");
        } else if (req.url?.startsWith("/v2/")) {
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
      metricsPort = await freePort();
      const conf = prepare(tmp.path, {
        port,
        upstream: `127.0.0.1:${address.port}`,
        mirrorPort,
        metricsPort,
      });
      ca = readFileSync(join(tmp.path, "tls.crt"), "utf8");
      nginx = await startNginx(tmp.path, conf, port, ca);
    });

    afterAll(async () => {
      await nginx?.stop();
      await new Promise<void>((resolve) => (upstream ? upstream.close(() => resolve()) : resolve()));
      tmp.remove();
    });

    it("the metrics server passes GET /metrics to the registry, serves nginx's status, and nothing else", async () => {
      const get = async (path: string, method = "GET") => {
        const r = await fetch(`http://127.0.0.1:${String(metricsPort)}${path}`, { method });
        return { status: r.status, body: await r.text() };
      };
      expect(await get("/metrics")).toEqual({
        status: 200,
        body: "registry_storage_action_seconds_count 1\n",
      });
      expect(paths).toContain("GET /metrics");
      const status = await get("/nginx_status");
      expect(status.status).toBe(200);
      expect(status.body).toMatch(/^Active connections: \d+/);
      expect(status.body).toMatch(/server accepts handled requests\n\s*\d+ \d+ \d+/);
      expect((await get("/metrics", "POST")).status).toBe(403);
      expect((await get("/nginx_status", "POST")).status).toBe(403);
      expect((await get("/v2/")).status).toBe(404);
    });

    it("htpasswd (apache2-utils) verifies the bcrypt entry our renderer wrote", () => {
      const file = join(tmp.path, "htpasswd");
      expect(readFileSync(file, "utf8")).toMatch(
        /^admin:\$2y\$04\$.*\nbuilder:\{SSHA\}.*\njenkins:\$2y\$10\$/,
      );
      const ok = run(toolPath(tools.htpasswd), ["-vb", file, "jenkins", "s3cret-pass"]);
      expect(ok.stderr).toContain("Password for user jenkins correct");
      expect(ok.status).toBe(0);
      const bad = run(toolPath(tools.htpasswd), ["-vb", file, "jenkins", "wrong"]);
      expect(bad.status).not.toBe(0);
    });

    it("answers /healthz without credentials, with the registry's answer on /v2/", async () => {
      seen.length = 0;
      paths.length = 0;
      const r = await httpsGet(port, "/healthz", ca);
      expect(r.status).toBe(200);
      expect(r.body).toBe("{}");
      expect(paths).toEqual(["GET /v2/"]);
      expect(seen[0]?.authorization).toBeUndefined();
      expect((await httpsGet(port, "/healthz", ca, { method: "POST" })).status).toBe(403);
    });

    it("asks for credentials on /v2/, with the API version header docker looks for", async () => {
      const r = await httpsGet(port, "/v2/", ca);
      expect(r.status).toBe(401);
      expect(r.headers["www-authenticate"]).toBe('Basic realm="Berth registry"');
      expect(r.headers["docker-distribution-api-version"]).toBe("registry/2.0");
    });

    it("checks a generated password's {SSHA} line itself: right password in, a one-letter change out", async () => {
      expect(readFileSync(join(tmp.path, "htpasswd"), "utf8")).toMatch(
        /\nbuilder:\{SSHA\}[A-Za-z0-9+/]{48}\n/,
      );
      seen.length = 0;
      const ok = await httpsGet(port, "/v2/", ca, { user: "builder", password: GENERATED });
      expect(ok.status).toBe(200);
      expect(seen).toHaveLength(1);
      const wrong = `${GENERATED.slice(0, -1)}V`;
      expect((await httpsGet(port, "/v2/", ca, { user: "builder", password: wrong })).status).toBe(401);
      expect((await httpsGet(port, "/v2/", ca, { user: "jenkins", password: GENERATED })).status).toBe(401);
    });

    it("refuses a wrong password and an unknown user", async () => {
      expect((await httpsGet(port, "/v2/", ca, { user: "jenkins", password: "wrong" })).status).toBe(401);
      expect((await httpsGet(port, "/v2/", ca, { user: "nobody", password: "s3cret-pass" })).status).toBe(
        401,
      );
    });

    it("proxies an authenticated request with the forwarding headers, its URI unchanged", async () => {
      seen.length = 0;
      paths.length = 0;
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
      // With a variable in proxy_pass and no URI part, the client's URI (query and escapes
      // included) reaches the registry as sent.
      const uri = "/v2/berth/test/blobs/uploads/abc%2Fdef?_state=x%3Dy&digest=sha256%3A00";
      expect((await httpsGet(port, uri, ca, { user: "jenkins", password: "s3cret-pass" })).status).toBe(200);
      expect(paths).toEqual(["GET /v2/", "GET /v2/", `GET ${uri}`]);
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

describeWithTools(
  "nginx follows the registry to a new address and /healthz follows the registry, without a restart (real dnsmasq as its resolver)",
  { tools: [tools.nginx, tools.openssl, tools.dnsmasq] },
  () => {
    const NAME = "registry.berth.test";
    /** As the rendered default keeps an answer (resolverValidSeconds). */
    const VALID_MS = 1000;
    let tmp = { path: "", remove: () => {} };
    let nginx: Daemon | undefined;
    let dnsmasq: Daemon | undefined;
    let port = 0;
    let upstreamPort = 0;
    let dnsPort = 0;
    let ca = "";
    const servers = new Map<string, Server>();
    /** Requests each registry stand-in received, by its address. */
    const hits = new Map<string, number>();
    const auth = { user: "jenkins", password: "s3cret-pass" };

    /** A registry stand-in on `address`:upstreamPort that names itself in its body. */
    async function startRegistry(address: string): Promise<void> {
      const srv = createServer((req, res) => {
        hits.set(address, (hits.get(address) ?? 0) + 1);
        res.writeHead(req.url?.startsWith("/v2/") ? 200 : 404, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ at: address }));
      });
      await new Promise<void>((resolve, reject) => {
        srv.once("error", reject);
        srv.listen(upstreamPort, address, resolve);
      });
      servers.set(address, srv);
    }
    async function stopRegistry(address: string): Promise<void> {
      const srv = servers.get(address);
      servers.delete(address);
      if (srv) await new Promise<void>((resolve) => srv.close(() => resolve()));
    }
    /** Waits until dnsmasq answers `address` for the name (NXDOMAIN when undefined). */
    async function dnsAnswers(address: string | undefined): Promise<void> {
      const resolver = new Resolver({ timeout: 1000, tries: 1 });
      resolver.setServers([`127.0.0.1:${dnsPort}`]);
      await waitFor(`dnsmasq answering ${address ?? "NXDOMAIN"} for ${NAME}`, async () => {
        try {
          return (await resolver.resolve4(NAME)).join() === (address ?? "");
        } catch (e) {
          return address === undefined && (e as { code?: string }).code === "ENOTFOUND";
        }
      }).catch((e: unknown) => {
        throw new Error(`${String(e)}\n${dnsmasq?.output() ?? ""}`);
      });
    }
    /** Points the name at `address` (or nowhere) in dnsmasq's hosts file, and reloads it (SIGHUP). */
    async function pointNameAt(address: string | undefined): Promise<void> {
      writeFileSync(join(tmp.path, "hosts"), address === undefined ? "" : `${address} ${NAME}\n`, {
        mode: 0o644,
      });
      const pid = dnsmasq?.child.pid;
      if (pid === undefined) throw new Error("dnsmasq is not running");
      process.kill(pid, "SIGHUP");
      await dnsAnswers(address);
    }

    beforeAll(async () => {
      tmp = tempDir("nginx-follow");
      port = await freePort();
      upstreamPort = await freePort();
      dnsPort = await freePort();
      const conf = prepare(tmp.path, {
        port,
        upstream: `${NAME}:${upstreamPort}`,
        resolver: `127.0.0.1:${dnsPort}`,
      });
      ca = readFileSync(join(tmp.path, "tls.crt"), "utf8");
      writeFileSync(join(tmp.path, "hosts"), `127.0.0.1 ${NAME}\n`, { mode: 0o644 });
      // Only the hosts file answers: no upstream servers, so no query leaves this machine.
      dnsmasq = startDaemon(toolPath(tools.dnsmasq), [
        "--keep-in-foreground",
        "--no-resolv",
        "--no-hosts",
        // Names under berth.test are answered from the hosts file only: NXDOMAIN when absent.
        "--local=/berth.test/",
        `--addn-hosts=${join(tmp.path, "hosts")}`,
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        `--port=${dnsPort}`,
        `--pid-file=${join(tmp.path, "dnsmasq.pid")}`,
        "--log-facility=-",
      ]);
      await dnsAnswers("127.0.0.1");
      await startRegistry("127.0.0.1");
      nginx = await startNginx(tmp.path, conf, port, ca);
    });

    afterAll(async () => {
      await nginx?.stop();
      await dnsmasq?.stop();
      for (const address of [...servers.keys()]) await stopRegistry(address);
      tmp.remove();
    });

    it("reaches a registry that moved to a new address (the old one still answering) within the cache time, every request succeeding", async () => {
      const pid = nginx?.child.pid;
      const first = await httpsGet(port, "/v2/", ca, auth);
      expect(first.status).toBe(200);
      expect(JSON.parse(first.body)).toEqual({ at: "127.0.0.1" });

      // The replacement: a new registry at a new address; the old address stays taken by a
      // server that answers, as another container on the old address would.
      await startRegistry("127.0.0.2");
      await pointNameAt("127.0.0.2");
      const moved = Date.now();
      let followedAfter = -1;
      while (Date.now() - moved < 6000) {
        const r = await httpsGet(port, "/v2/", ca, auth);
        expect(r.status, r.body).toBe(200);
        if ((JSON.parse(r.body) as { at: string }).at === "127.0.0.2") {
          followedAfter = Date.now() - moved;
          break;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      console.log(`nginx followed the name to its new address ${String(followedAfter)} ms after DNS changed`);
      expect(followedAfter).toBeGreaterThanOrEqual(0);
      // nginx keeps an answer at most `valid` (whole seconds on its clock): under 2 s, plus slack
      // for a busy machine.
      expect(followedAfter).toBeLessThan(2 * VALID_MS + 1500);

      // From now on, the old address gets nothing.
      const oldHits = hits.get("127.0.0.1") ?? 0;
      for (let i = 0; i < 10; i++) {
        const r = await httpsGet(port, "/v2/", ca, auth);
        expect(r.status).toBe(200);
        expect(JSON.parse(r.body)).toEqual({ at: "127.0.0.2" });
      }
      expect(hits.get("127.0.0.1") ?? 0).toBe(oldHits);
      await stopRegistry("127.0.0.1");
      expect((await httpsGet(port, "/healthz", ca)).status).toBe(200);
      // The same nginx, never restarted or reloaded.
      expect(nginx?.child.pid).toBe(pid);
      expect(nginx?.child.exitCode).toBeNull();
    });

    it("/healthz fails quickly when the registry does not answer, and recovers by itself", async () => {
      expect((await httpsGet(port, "/healthz", ca)).status).toBe(200);
      // Registry stopped, its name still resolving: connection refused → 502 at once.
      await stopRegistry("127.0.0.2");
      let t = Date.now();
      const refused = await httpsGet(port, "/healthz", ca);
      expect(refused.status).toBe(502);
      expect(Date.now() - t).toBeLessThan(2000);
      // The registry's name gone (a stopped container leaves Docker's DNS): 502 as well, within
      // the resolver's timeout.
      await pointNameAt(undefined);
      await new Promise((r) => setTimeout(r, 2 * VALID_MS + 100));
      t = Date.now();
      const unresolved = await httpsGet(port, "/healthz", ca);
      expect(unresolved.status).toBe(502);
      expect(Date.now() - t).toBeLessThan(6000);
      // (nginx's log line arrives on its stderr pipe, maybe after the response.)
      const notResolved = new RegExp(`${NAME.replace(/\./g, "\\.")} could not be resolved`);
      await waitFor("nginx logging the unresolved name", () =>
        Promise.resolve(notResolved.test(nginx?.output() ?? "")),
      );

      // Back: name and registry again; nginx answers healthy within the cache time, not restarted.
      await startRegistry("127.0.0.2");
      await pointNameAt("127.0.0.2");
      t = Date.now();
      await waitFor(
        "/healthz healthy again",
        async () => (await httpsGet(port, "/healthz", ca)).status === 200,
        5000,
      );
      expect(Date.now() - t).toBeLessThan(2 * VALID_MS + 1500);
    });
  },
);
