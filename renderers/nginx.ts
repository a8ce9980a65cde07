/**
 * A complete `nginx.conf` (main context, `events`, `http`) for the TLS + basic-auth front of the
 * private registry, and optionally a read-only, address-restricted front for a pull-through mirror.
 *
 * The file holds no `daemon` directive: the official nginx image starts `nginx -g "daemon off;"`,
 * and nginx refuses a directive given both ways. Workers (not the master) read the htpasswd file on
 * each request: it must be readable by the worker user (`nginx` in the official image, `nobody` by
 * default when started as root).
 *
 * Upstream names (e.g. `registry:5000`) are NOT resolved once at start (what an `upstream` block or
 * a literal `proxy_pass http://registry:5000` does): `proxy_pass` takes them from a variable, so
 * nginx asks `resolver` (Docker's embedded DNS, 127.0.0.11, by default) at request time and keeps
 * an answer at most `resolverValidSeconds`. A registry container that is replaced and comes back at
 * a new address is reached without restarting nginx, and nginx starts even when the registry does
 * not exist yet. The price is one DNS query to the local embedded DNS per few seconds of traffic,
 * and no kept-alive upstream connections (connections on the host's bridge are cheap).
 *
 * `/healthz` is proxied to the registry's `/v2/` (which the registry answers without credentials:
 * authentication is nginx's job), so it fails when the registry behind nginx does not answer.
 */
import {
  RenderError,
  checkHostPort,
  checkHostname,
  checkIntRange,
  checkPath,
  checkPort,
  isCidrOrAddress,
  isIpAddress,
  joinLines,
} from "./common.ts";
import { isIPv6 } from "node:net";

const R = "renderNginxConfig";

/** Read-only front for a registry running in pull-through cache mode. */
export interface NginxMirrorInput {
  /** Port of the mirror server (e.g. 5443). Must differ from the registry port. */
  port: number;
  /** `host:port` of the pull-through registry container, e.g. `registry-mirror:5000`. */
  upstream: string;
  /** Addresses or CIDRs allowed to pull (e.g. the CI subnet); everyone else gets 403. Not empty. */
  allowCidrs: readonly string[];
  /** Serve the mirror over TLS with the registry's certificate. Default true. */
  tls?: boolean;
}

export interface NginxConfigInput {
  /** The registry's DNS name (`server_name`), e.g. `registry.ci.example.org`. */
  serverName: string;
  /** TLS listen port. Default 443. Tests use a high port. */
  listenPort?: number;
  /** Bind only this address (IPv4 or IPv6). Default: all IPv4 addresses. */
  listenAddress?: string;
  /** PEM certificate (chain) path inside the nginx container. */
  tlsCertificatePath: string;
  /** PEM private key path inside the nginx container (read by the master process). */
  tlsKeyPath: string;
  /** bcrypt htpasswd file path inside the nginx container (read by workers). */
  htpasswdPath: string;
  /** `host:port` of the registry container, e.g. `registry:5000`; resolved per request (see above). */
  upstream: string;
  /**
   * DNS server nginx resolves the upstream names with, `address` or `address:port` (IPv6 in
   * brackets). Default `127.0.0.11`, Docker's embedded DNS, present in every container on a
   * user-defined network. Tests point it at a dnsmasq on loopback.
   */
  resolver?: string;
  /** How long an upstream's address is kept before nginx asks again, seconds (1-60). Default 1. */
  resolverValidSeconds?: number;
  /** Time to connect to an upstream (and to resolve its name), seconds (1-60). Default 5. */
  upstreamConnectTimeoutSeconds?: number;
  /** Realm shown in the `WWW-Authenticate` challenge. Default `Berth registry`. */
  authRealm?: string;
  /** Default `/var/run/nginx.pid`. */
  pidPath?: string;
  /** Path or `stderr`. Default `/dev/stderr`. */
  errorLogPath?: string;
  /** Path or `off`. Default `/dev/stdout`. */
  accessLogPath?: string;
  /** Directory for request/proxy temp files (tests point it into a temp dir). Default: nginx's built-in. */
  tempDir?: string;
  /** `worker_processes`. Default `auto`. */
  workerProcesses?: number | "auto";
  /** `user` for worker processes when started as root. Default: not set (the build's default). */
  user?: string;
  /** Optional pull-through mirror server. */
  mirror?: NginxMirrorInput;
  /**
   * Registry maintenance (renderers/registry-gc.ts): while `<maintenanceDir>/refusal.json` exists,
   * writes to `/v2/` (POST, PUT, PATCH, DELETE) get 405 with that file as the body (a registry
   * error document naming the end of the window); GET and HEAD pass. Default: no maintenance gate.
   */
  maintenanceDir?: string;
  /**
   * Optional plain-HTTP server on `port` passing `GET /metrics` to the registry's debug server
   * and serving nginx's own status (`GET /nginx_status`, stub_status)
   * (`upstream`, e.g. `registry:5001`): the registry stays on its internal network, and who may
   * reach the port is the security group's business (the monitoring CIDRs).
   */
  metrics?: { port: number; upstream: string };
}

export const NGINX_DEFAULTS = {
  listenPort: 443,
  authRealm: "Berth registry",
  pidPath: "/var/run/nginx.pid",
  errorLogPath: "/dev/stderr",
  accessLogPath: "/dev/stdout",
  workerProcesses: "auto",
  resolver: "127.0.0.11",
  resolverValidSeconds: 1,
  upstreamConnectTimeoutSeconds: 5,
} as const;

/**
 * docker clients before 1.6 speak a v2 API the registry does not support; they (and Go 1.1's
 * default HTTP client, which they used) are turned away on `/v2/`. Newer clients send
 * `docker/<version> go/<version> ...`.
 */
export const OLD_DOCKER_USER_AGENT = "^(docker/1\\.[0-5]\\.|Go )";

function checkLogTarget(field: string, value: string, special: string): string {
  return value === special ? value : checkPath(R, field, value);
}

/**
 * The `resolver` server: `address`, `address:port`, `[ipv6]` or `[ipv6]:port`. A bare IPv6
 * address is put in brackets (nginx's form).
 */
function checkResolver(value: string): string {
  if (isIPv6(value)) return `[${value}]`;
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(value);
  const address = m?.[1] ?? m?.[2] ?? "";
  const port = m?.[3] === undefined ? undefined : Number(m[3]);
  const ok =
    m !== null &&
    (m[1] === undefined ? isIpAddress(address) && !isIPv6(address) : isIPv6(address)) &&
    (port === undefined || (port >= 1 && port <= 65535));
  if (!ok) {
    throw new RenderError(
      R,
      "resolver",
      `${JSON.stringify(value)} is not an IP address, address:port or [IPv6]:port`,
    );
  }
  return value;
}

function listenDirective(address: string | undefined, port: number, tls: boolean): string {
  const where =
    address === undefined ? String(port) : isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
  return `listen ${where}${tls ? " ssl" : ""};`;
}

/**
 * The variable a location proxies to: set in the location, so `proxy_pass` resolves the name at
 * request time through `resolver` instead of once at start.
 */
function upstreamVariable(variable: string, upstream: string): string {
  return `set $${variable} ${upstream};`;
}

function proxyLines(variable: string, connectTimeout: number): string[] {
  return [
    // No URI part: the client's request URI goes to the registry unchanged, as with a literal name.
    `proxy_pass http://$${variable};`,
    `proxy_connect_timeout ${connectTimeout}s;`,
    "proxy_http_version 1.1;",
    'proxy_set_header Connection "";',
    "proxy_set_header Host $http_host;",
    "proxy_set_header X-Real-IP $remote_addr;",
    "proxy_set_header X-Forwarded-For $remote_addr;",
    "proxy_set_header X-Forwarded-Proto $scheme;",
    "proxy_read_timeout 900;",
    "proxy_send_timeout 900;",
    "proxy_request_buffering off;",
    "proxy_buffering off;",
    // Unbuffered, nginx relays a layer through one buffer of proxy_buffer_size (default one 4 KiB
    // page): a read and a 4 KiB TLS record per page. 128 KiB cut nginx's CPU for a 200 MiB pull by
    // about a third (bench/registry.ts, docs/performance.md). proxy_buffers and
    // proxy_busy_buffers_size only have to agree with it (nginx -t); unused while unbuffered.
    "proxy_buffer_size 128k;",
    "proxy_buffers 4 128k;",
    "proxy_busy_buffers_size 128k;",
  ];
}

function indent(depth: number, lines: readonly string[]): string[] {
  const pad = "    ".repeat(depth);
  return lines.map((l) => (l === "" ? "" : pad + l));
}

function tlsLines(cert: string, key: string): string[] {
  return [`ssl_certificate ${cert};`, `ssl_certificate_key ${key};`];
}

/**
 * `/healthz`: the registry's `/v2/` (answered without credentials by the registry itself), so the
 * check fails (502/504) when the registry behind nginx does not answer. GET and HEAD only.
 */
function healthAndFallback(variable: string, upstream: string, connectTimeout: number): string[] {
  return [
    "location = /healthz {",
    ...indent(1, [
      "auth_basic off;",
      "access_log off;",
      "limit_except GET HEAD {",
      "    deny all;",
      "}",
      upstreamVariable(variable, upstream),
      // With a URI part and a variable, nginx sends exactly this URI.
      `proxy_pass http://$${variable}/v2/;`,
      `proxy_connect_timeout ${connectTimeout}s;`,
      `proxy_read_timeout ${connectTimeout}s;`,
    ]),
    "}",
    "",
    "location / {",
    "    return 404;",
    "}",
  ];
}

/** Renders the whole nginx.conf. Deterministic: the same input gives the same bytes. */
export function renderNginxConfig(input: NginxConfigInput): string {
  const serverName = checkHostname(R, "serverName", input.serverName);
  const port = checkPort(R, "listenPort", input.listenPort ?? NGINX_DEFAULTS.listenPort);
  if (input.listenAddress !== undefined && !isIpAddress(input.listenAddress)) {
    throw new RenderError(R, "listenAddress", `${JSON.stringify(input.listenAddress)} is not an IP address`);
  }
  const cert = checkPath(R, "tlsCertificatePath", input.tlsCertificatePath);
  const key = checkPath(R, "tlsKeyPath", input.tlsKeyPath);
  const htpasswd = checkPath(R, "htpasswdPath", input.htpasswdPath);
  const upstream = checkHostPort(R, "upstream", input.upstream);
  const realm = input.authRealm ?? NGINX_DEFAULTS.authRealm;
  if (!/^[A-Za-z0-9 ._-]{1,64}$/.test(realm)) {
    throw new RenderError(R, "authRealm", "must be 1-64 letters, digits, spaces or ._-");
  }
  const pid = checkPath(R, "pidPath", input.pidPath ?? NGINX_DEFAULTS.pidPath);
  const errorLog = checkLogTarget(
    "errorLogPath",
    input.errorLogPath ?? NGINX_DEFAULTS.errorLogPath,
    "stderr",
  );
  const accessLog = checkLogTarget(
    "accessLogPath",
    input.accessLogPath ?? NGINX_DEFAULTS.accessLogPath,
    "off",
  );
  const workers = input.workerProcesses ?? NGINX_DEFAULTS.workerProcesses;
  if (workers !== "auto") checkIntRange(R, "workerProcesses", workers, 1, 64);
  if (input.user !== undefined && !/^[a-z_][a-z0-9_-]{0,31}$/.test(input.user)) {
    throw new RenderError(R, "user", `${JSON.stringify(input.user)} is not a user name`);
  }
  const tempDir = input.tempDir === undefined ? undefined : checkPath(R, "tempDir", input.tempDir);
  const maintenanceDir =
    input.maintenanceDir === undefined ? undefined : checkPath(R, "maintenanceDir", input.maintenanceDir);
  const refusal = maintenanceDir === undefined ? undefined : `${maintenanceDir}/refusal.json`;
  const resolver = checkResolver(input.resolver ?? NGINX_DEFAULTS.resolver);
  const valid = checkIntRange(
    R,
    "resolverValidSeconds",
    input.resolverValidSeconds ?? NGINX_DEFAULTS.resolverValidSeconds,
    1,
    60,
  );
  const connectTimeout = checkIntRange(
    R,
    "upstreamConnectTimeoutSeconds",
    input.upstreamConnectTimeoutSeconds ?? NGINX_DEFAULTS.upstreamConnectTimeoutSeconds,
    1,
    60,
  );

  const mirror = input.mirror;
  if (mirror !== undefined) {
    checkPort(R, "mirror.port", mirror.port);
    if (mirror.port === port) throw new RenderError(R, "mirror.port", "must differ from listenPort");
    checkHostPort(R, "mirror.upstream", mirror.upstream);
    if (mirror.allowCidrs.length === 0) {
      throw new RenderError(R, "mirror.allowCidrs", "must name at least one address or CIDR");
    }
    for (const cidr of mirror.allowCidrs) {
      if (!isCidrOrAddress(cidr)) {
        throw new RenderError(R, "mirror.allowCidrs", `${JSON.stringify(cidr)} is not an IP address or CIDR`);
      }
    }
  }

  const metrics = input.metrics;
  if (metrics !== undefined) {
    checkPort(R, "metrics.port", metrics.port);
    if (metrics.port === port || metrics.port === mirror?.port)
      throw new RenderError(R, "metrics.port", "must differ from listenPort and mirror.port");
    checkHostPort(R, "metrics.upstream", metrics.upstream);
  }

  const main: string[] = [
    "# Rendered by Berth (renderers/nginx.ts). Run in the foreground: -g 'daemon off;'.",
  ];
  if (input.user !== undefined) main.push(`user ${input.user};`);
  main.push(`worker_processes ${workers};`, `pid ${pid};`, `error_log ${errorLog} warn;`, "");
  main.push("events {", "    worker_connections 1024;", "}", "");

  const http: string[] = [
    "default_type application/octet-stream;",
    accessLog === "off" ? "access_log off;" : `access_log ${accessLog};`,
    "server_tokens off;",
    "sendfile on;",
    "keepalive_timeout 65;",
  ];
  if (tempDir !== undefined) {
    http.push(`client_body_temp_path ${tempDir}/client_body;`, `proxy_temp_path ${tempDir}/proxy;`);
  }
  http.push(
    "",
    "ssl_protocols TLSv1.2 TLSv1.3;",
    "ssl_prefer_server_ciphers off;",
    "ssl_session_cache shared:berth_tls:10m;",
    "ssl_session_timeout 1d;",
    "ssl_session_tickets off;",
    "",
    "# The registry sets this header itself; add it only where it did not (nginx's own 401s).",
    "map $upstream_http_docker_distribution_api_version $berth_docker_api_version {",
    '    "" "registry/2.0";',
    "}",
    "",
    "# Upstream names are resolved per request (proxy_pass with a variable), an answer kept at most",
    `# ${valid} s: a replaced registry container is reached at its new address without restarting nginx.`,
    `resolver ${resolver} valid=${valid}s ipv6=off;`,
    `resolver_timeout ${connectTimeout}s;`,
  );

  const registryServer: string[] = [
    "server {",
    ...indent(1, [
      listenDirective(input.listenAddress, port, true),
      `server_name ${serverName};`,
      ...tlsLines(cert, key),
      "",
      "# Layers are large and pushed chunked.",
      "client_max_body_size 0;",
      "chunked_transfer_encoding on;",
      "",
      "location /v2/ {",
      ...indent(1, [
        `if ($http_user_agent ~ "${OLD_DOCKER_USER_AGENT}") {`,
        "    return 404;",
        "}",
        ...(refusal === undefined
          ? []
          : [
              "# Registry maintenance (berth-registry-gc): while the refusal exists, writes get 405",
              "# with it as the body; reads pass. Checked before authentication (rewrite phase).",
              'set $berth_maintenance "";',
              `if (-f ${refusal}) {`,
              '    set $berth_maintenance "on";',
              "}",
              'set $berth_write_refused "$berth_maintenance $request_method";',
              'if ($berth_write_refused ~ "^on (POST|PUT|PATCH|DELETE)$") {',
              "    return 405;",
              "}",
              "error_page 405 /berth-maintenance-refusal;",
            ]),
        `auth_basic "${realm}";`,
        `auth_basic_user_file ${htpasswd};`,
        "add_header 'Docker-Distribution-Api-Version' $berth_docker_api_version always;",
        upstreamVariable("berth_registry", upstream),
        ...proxyLines("berth_registry", connectTimeout),
      ]),
      "}",
      "",
      ...(refusal === undefined
        ? []
        : [
            "location = /berth-maintenance-refusal {",
            ...indent(1, [
              "internal;",
              `alias ${refusal};`,
              "default_type application/json;",
              "add_header 'Docker-Distribution-Api-Version' 'registry/2.0' always;",
            ]),
            "}",
            "",
          ]),
      ...healthAndFallback("berth_registry", upstream, connectTimeout),
    ]),
    "}",
  ];
  http.push("", ...registryServer);

  if (mirror !== undefined) {
    const tls = mirror.tls ?? true;
    const mirrorServer: string[] = [
      "# Pull-through mirror: read-only, no basic auth, only from the allowed networks.",
      "server {",
      ...indent(1, [
        listenDirective(input.listenAddress, mirror.port, tls),
        `server_name ${serverName};`,
        ...(tls ? tlsLines(cert, key) : []),
        "",
        "location /v2/ {",
        ...indent(1, [
          ...mirror.allowCidrs.map((c) => `allow ${c};`),
          "deny all;",
          "limit_except GET HEAD {",
          "    deny all;",
          "}",
          "add_header 'Docker-Distribution-Api-Version' $berth_docker_api_version always;",
          upstreamVariable("berth_mirror", mirror.upstream),
          ...proxyLines("berth_mirror", connectTimeout),
        ]),
        "}",
        "",
        ...healthAndFallback("berth_mirror", mirror.upstream, connectTimeout),
      ]),
      "}",
    ];
    http.push("", ...mirrorServer);
  }

  if (metrics !== undefined) {
    http.push(
      "",
      "# The registry's Prometheus metrics (its debug server), read-only, plain HTTP.",
      "server {",
      ...indent(1, [
        listenDirective(input.listenAddress, metrics.port, false),
        "access_log off;",
        "",
        "location = /metrics {",
        ...indent(1, [
          "limit_except GET HEAD {",
          "    deny all;",
          "}",
          upstreamVariable("berth_registry_metrics", metrics.upstream),
          `proxy_pass http://$berth_registry_metrics/metrics;`,
          `proxy_connect_timeout ${connectTimeout}s;`,
          `proxy_read_timeout ${connectTimeout}s;`,
        ]),
        "}",
        "",
        "# nginx's own counters (connections, requests): stub_status, not Prometheus' format.",
        "location = /nginx_status {",
        ...indent(1, ["limit_except GET HEAD {", "    deny all;", "}", "stub_status;"]),
        "}",
        "",
        "location / {",
        "    return 404;",
        "}",
      ]),
      "}",
    );
  }

  return joinLines([...main, "http {", ...indent(1, http), "}"]);
}
