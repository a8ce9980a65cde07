/**
 * `config.yml` for the distribution registry (`registry:2` image, Debian's `docker-registry`).
 *
 * The registry listens on plain HTTP inside the container network; nginx in front of it terminates
 * TLS and does basic auth, so this file has no `auth` section. Checked against distribution 2.8's
 * configuration reference (`/usr/share/doc/docker-registry/configuration.md.gz`).
 */
import { RenderError, checkHostPort, checkIntRange, checkPath, joinLines } from "./common.ts";

const R = "renderRegistryConfig";

/** Pull-through cache mode: the registry mirrors `remoteUrl` and refuses pushes. */
export interface RegistryProxyInput {
  /** Upstream registry, e.g. `https://registry-1.docker.io`. */
  remoteUrl: string;
  /** Credentials for the upstream (private repositories); both or neither. Secret. */
  username?: string;
  password?: string;
}

export interface RegistryConfigInput {
  /**
   * `http.secret`: signs upload state handed to clients. Secret; must be the same across replicas
   * and restarts or in-flight uploads break. At least 16 characters.
   */
  httpSecret: string;
  /** `http.addr`. Default `:5000` (all addresses in the container, plain HTTP). */
  addr?: string;
  /** `storage.filesystem.rootdirectory`. Default `/var/lib/registry` (the upstream image's volume). */
  rootDirectory?: string;
  /** Run as a pull-through cache. Then `storage.delete` is left disabled. */
  proxy?: RegistryProxyInput;
  /** `log.level`. Default `info`. */
  logLevel?: "error" | "warn" | "info" | "debug";
  /** Storage driver health check interval in seconds. Default 10. */
  healthIntervalSeconds?: number;
  /** Consecutive failures before the registry reports itself unhealthy. Default 3. */
  healthThreshold?: number;
  /**
   * `storage.cache.blobdescriptor`. Default `inmemory`. `off` for a registry whose storage is
   * garbage-collected while it runs (renderers/registry-gc.ts): the in-memory cache would go on
   * saying that deleted blobs exist.
   */
  blobDescriptorCache?: "inmemory" | "off";
  /**
   * `http.debug.addr`: the debug server, with Prometheus metrics at `/metrics`
   * (`http.debug.prometheus`), e.g. `:5001`. Default: no debug server.
   */
  metricsAddr?: string;
}

export const REGISTRY_DEFAULTS = {
  addr: ":5000",
  rootDirectory: "/var/lib/registry",
  logLevel: "info",
  healthIntervalSeconds: 10,
  healthThreshold: 3,
} as const;

/** A YAML double-quoted scalar. JSON string escapes are a subset of YAML's, so this is exact. */
function q(value: string): string {
  return JSON.stringify(value);
}

function checkAddr(value: string): string {
  if (/^:\d{1,5}$/.test(value)) {
    const port = Number(value.slice(1));
    if (port >= 1 && port <= 65535) return value;
  } else if (/^[^\s:]+:\d{1,5}$/.test(value) || /^\[[0-9A-Fa-f:.]+\]:\d{1,5}$/.test(value)) {
    return checkHostPort(R, "addr", value);
  }
  throw new RenderError(R, "addr", `${JSON.stringify(value)} must be ":port" or "host:port"`);
}

function checkRemoteUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new RenderError(R, "proxy.remoteUrl", `${JSON.stringify(value)} is not a URL`);
  }
  if ((url.protocol !== "https:" && url.protocol !== "http:") || url.username || url.password) {
    throw new RenderError(
      R,
      "proxy.remoteUrl",
      `${JSON.stringify(value)} must be an http(s) URL without credentials (use proxy.username/password)`,
    );
  }
  return value;
}

function checkNoControl(field: string, value: string): string {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) {
    throw new RenderError(R, field, "must not contain control characters");
  }
  return value;
}

/** Renders the registry's `config.yml`. Deterministic: the same input gives the same bytes. */
export function renderRegistryConfig(input: RegistryConfigInput): string {
  const addr = checkAddr(input.addr ?? REGISTRY_DEFAULTS.addr);
  const metricsAddr = input.metricsAddr === undefined ? undefined : checkAddr(input.metricsAddr);
  if (metricsAddr !== undefined && metricsAddr === addr)
    throw new RenderError(R, "metricsAddr", "must differ from addr");
  const root = checkPath(R, "rootDirectory", input.rootDirectory ?? REGISTRY_DEFAULTS.rootDirectory);
  const logLevel = input.logLevel ?? REGISTRY_DEFAULTS.logLevel;
  if (!["error", "warn", "info", "debug"].includes(logLevel)) {
    throw new RenderError(R, "logLevel", `${JSON.stringify(logLevel)} is not error|warn|info|debug`);
  }
  const interval = checkIntRange(
    R,
    "healthIntervalSeconds",
    input.healthIntervalSeconds ?? REGISTRY_DEFAULTS.healthIntervalSeconds,
    1,
    3600,
  );
  const threshold = checkIntRange(
    R,
    "healthThreshold",
    input.healthThreshold ?? REGISTRY_DEFAULTS.healthThreshold,
    1,
    100,
  );
  checkNoControl("httpSecret", input.httpSecret);
  if (input.httpSecret.length < 16) {
    throw new RenderError(R, "httpSecret", "must be at least 16 characters (generate it randomly)");
  }

  const lines: string[] = [
    "# Rendered by Berth (renderers/registry.ts). Auth and TLS are done by nginx in front.",
    "version: 0.1",
    "log:",
    `  level: ${logLevel}`,
    "  formatter: text",
    "  fields:",
    "    service: registry",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${q(root)}`,
  ];
  const cache = input.blobDescriptorCache ?? "inmemory";
  if (cache === "inmemory") lines.push("  cache:", "    blobdescriptor: inmemory");
  else if (cache !== "off")
    throw new RenderError(R, "blobDescriptorCache", `${JSON.stringify(cache)} is not inmemory|off`);
  if (input.proxy === undefined) {
    lines.push("  delete:", "    enabled: true");
  }
  lines.push(
    "http:",
    `  addr: ${q(addr)}`,
    `  secret: ${q(input.httpSecret)}`,
    "  headers:",
    "    X-Content-Type-Options: [nosniff]",
    ...(metricsAddr === undefined
      ? []
      : [
          "  debug:",
          `    addr: ${q(metricsAddr)}`,
          "    prometheus:",
          "      enabled: true",
          "      path: /metrics",
        ]),
    "health:",
    "  storagedriver:",
    "    enabled: true",
    `    interval: ${interval}s`,
    `    threshold: ${threshold}`,
  );
  if (input.proxy !== undefined) {
    const { remoteUrl, username, password } = input.proxy;
    lines.push("proxy:", `  remoteurl: ${q(checkRemoteUrl(remoteUrl))}`);
    if ((username === undefined) !== (password === undefined)) {
      throw new RenderError(R, "proxy", "give both username and password, or neither");
    }
    if (username !== undefined && password !== undefined) {
      lines.push(
        `  username: ${q(checkNoControl("proxy.username", username))}`,
        `  password: ${q(checkNoControl("proxy.password", password))}`,
      );
    }
  }
  return joinLines(lines);
}
