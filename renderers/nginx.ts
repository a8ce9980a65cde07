/**
 * A complete `nginx.conf` (main context, `events`, `http`) for the TLS + basic-auth front of the
 * private registry, and optionally a read-only, address-restricted front for a pull-through mirror.
 *
 * The file holds no `daemon` directive: the official nginx image starts `nginx -g "daemon off;"`,
 * and nginx refuses a directive given both ways. Upstream host names (e.g. `registry:5000`) are
 * resolved once when nginx starts, so the registry container must exist on the same network first.
 * Workers (not the master) read the htpasswd file on each request: it must be readable by the
 * worker user (`nginx` in the official image, `nobody` by default when started as root).
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
  /** `host:port` of the registry container, e.g. `registry:5000`. */
  upstream: string;
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
}

export const NGINX_DEFAULTS = {
  listenPort: 443,
  authRealm: "Berth registry",
  pidPath: "/var/run/nginx.pid",
  errorLogPath: "/dev/stderr",
  accessLogPath: "/dev/stdout",
  workerProcesses: "auto",
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

function listenDirective(address: string | undefined, port: number, tls: boolean): string {
  const where =
    address === undefined ? String(port) : isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
  return `listen ${where}${tls ? " ssl" : ""};`;
}

function proxyLines(upstreamName: string): string[] {
  return [
    `proxy_pass http://${upstreamName};`,
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
  ];
}

function indent(depth: number, lines: readonly string[]): string[] {
  const pad = "    ".repeat(depth);
  return lines.map((l) => (l === "" ? "" : pad + l));
}

function tlsLines(cert: string, key: string): string[] {
  return [`ssl_certificate ${cert};`, `ssl_certificate_key ${key};`];
}

function healthAndFallback(): string[] {
  return [
    "location = /healthz {",
    "    auth_basic off;",
    "    access_log off;",
    "    default_type text/plain;",
    '    return 200 "ok\\n";',
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
    "upstream berth_registry {",
    `    server ${upstream};`,
    "    keepalive 16;",
    "}",
  );
  if (mirror !== undefined) {
    http.push("", "upstream berth_mirror {", `    server ${mirror.upstream};`, "    keepalive 16;", "}");
  }

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
        `auth_basic "${realm}";`,
        `auth_basic_user_file ${htpasswd};`,
        "add_header 'Docker-Distribution-Api-Version' $berth_docker_api_version always;",
        ...proxyLines("berth_registry"),
      ]),
      "}",
      "",
      ...healthAndFallback(),
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
          ...proxyLines("berth_mirror"),
        ]),
        "}",
        "",
        ...healthAndFallback(),
      ]),
      "}",
    ];
    http.push("", ...mirrorServer);
  }

  return joinLines([...main, "http {", ...indent(1, http), "}"]);
}
