/**
 * Benchmark: the private registry under concurrent load, through Berth's nginx (TLS + basic auth)
 * and directly, side by side in one run.
 *
 * The real registry (Debian's `docker-registry` 2.8, config.yml from renderers/registry.ts) behind
 * the real nginx (nginx.conf from renderers/nginx.ts, an ECDSA P-256 certificate as the program
 * issues, an htpasswd line made the way the program makes it for a generated password: 32 random
 * letters and digits, nginx's {SSHA} as renderers/htpasswd.ts sshaEntry writes it), everything on 127.0.0.1.
 *
 * Clients (--client):
 * - `skopeo` (default): the containers/image library, the registry protocol as docker speaks it
 *   (blob HEAD, upload POST, streamed PATCH, PUT, manifest PUT; basic auth after the 401
 *   challenge; every digest checked on pull), Go's TLS. One process per image copy, the same for
 *   both paths, so per-image start-up is in both and small images are diluted by it.
 * - `http`: the same requests from this process (node:https, kept-alive connections, the layer
 *   PATCH streamed chunked in 1 MiB writes, pulls hashed as they arrive). Less per-image overhead,
 *   but node's TLS client is itself the bottleneck of a big push through TLS (its own CPU was
 *   3.4 s for a 200 MiB push through nginx vs 0.8 s direct), so it measures node, not nginx.
 *
 * Each round, for each phase, the two paths run back to back (which goes first alternates by
 * round, so drift in the machine's load favours neither):
 *   1. push: `pushers` concurrent pushers, each pushing `images` images of one random 3-5 MiB layer;
 *   2. pull: the same images pulled back by as many pullers into fresh OCI layouts;
 *   3. big push: one image with one `big` MiB random layer; 4. big pull: that image back.
 * Every pulled image is checked (skopeo: its OCI layout afterwards, not timed; http: as the bytes
 * arrive): manifest digest, and every blob's sha256 and size against what was generated. nginx's access log and the registry's log are read for
 * 413s and 5xx. Exit status 1 when anything was lost, a copy failed, or a 413/5xx was seen; the
 * ratios are printed, not asserted (this is a measurement, not a timed test).
 *
 *   npx tsx bench/registry.ts [--client skopeo|http] [--pushers 8] [--images 5] [--big 200] [--rounds 2]
 *       [--location 'directive;']... [--http 'directive;']... [--experiment no-auth|plain-http|keepalive|bcrypt5|direct-tls]...
 *
 * --location / --http add directives to nginx's `location /v2/` / `http` block, and --experiment
 * changes the rendered config (auth off, TLS off, an `upstream` block with keepalive): for finding
 * out where time goes, never what the program renders. `direct-tls` gives the direct path the
 * registry's own TLS (distribution's `http.tls`, the same certificate), so that nginx/direct
 * compares nginx's proxying and basic auth alone, encryption being on both paths. BENCH_LIMIT_MINUTES (default 30) bounds the
 * run; servers and skopeo processes are stopped by pid and the work directory removed, also on
 * failure, a signal or the limit.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash, randomBytes, randomInt } from "node:crypto";
import {
  chmodSync,
  createReadStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { parseArgs } from "node:util";

import { ociImage, writeOciLayout, type OciBlob, type OciImage } from "../lib/oci.ts";
import { tarArchive } from "../lib/tar.ts";
import { bcryptSaltFrom, htpasswdEntry, renderHtpasswd, sshaEntry } from "../renderers/htpasswd.ts";
import { renderNginxConfig } from "../renderers/nginx.ts";
import { renderRegistryConfig } from "../renderers/registry.ts";
import {
  findTool,
  freePort,
  selfSignedCert,
  startNginx,
  startRegistry,
  type Daemon,
} from "./support/daemons.ts";

const MiB = 1024 * 1024;
const SERVER_NAME = "registry.berth.test";
const USER = "ci";

const { values: opts } = parseArgs({
  options: {
    pushers: { type: "string", default: "8" },
    images: { type: "string", default: "5" },
    big: { type: "string", default: "200" },
    rounds: { type: "string", default: "2" },
    location: { type: "string", multiple: true, default: [] },
    http: { type: "string", multiple: true, default: [] },
    experiment: { type: "string", multiple: true, default: [] },
    client: { type: "string", default: "skopeo" },
  },
});
const int = (name: string, v: string, min: number, max: number): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new Error(`--${name} must be an integer ${min}-${max}, got ${v}`);
  return n;
};
const PUSHERS = int("pushers", opts.pushers, 1, 32);
const IMAGES = int("images", opts.images, 1, 50);
const BIG_MIB = int("big", opts.big, 0, 2048);
const ROUNDS = int("rounds", opts.rounds, 1, 10);
const EXPERIMENTS = opts.experiment;
const CLIENT = opts.client;
if (CLIENT !== "http" && CLIENT !== "skopeo")
  throw new Error(`--client must be http or skopeo, got ${CLIENT}`);
for (const e of EXPERIMENTS) {
  if (!["no-auth", "plain-http", "keepalive", "bcrypt5", "direct-tls"].includes(e))
    throw new Error(`unknown --experiment ${e}`);
}
const LIMIT_MS = Number(process.env.BENCH_LIMIT_MINUTES ?? 30) * 60_000;
const COPY_TIMEOUT_MS = 600_000;

// --- programs -----------------------------------------------------------------------------------

const PROGRAMS = {
  nginx: "nginx-light",
  "docker-registry": "docker-registry",
  skopeo: "skopeo",
  openssl: "openssl",
} as const;
const paths: Record<string, string> = {};
{
  const missing: string[] = [];
  for (const [tool, pkg] of Object.entries(PROGRAMS)) {
    const p = findTool(tool);
    if (p === undefined) missing.push(`${tool} (apt-get install -y ${pkg})`);
    else paths[tool] = p;
  }
  if (missing.length > 0) {
    console.error(`bench/registry.ts needs: ${missing.join(", ")}`);
    process.exit(2);
  }
}
const tool = (name: keyof typeof PROGRAMS): string => paths[name] as string;

// --- cleanup: servers and copies by pid, the work directory -------------------------------------

const work = mkdtempSync(join(tmpdir(), "berth-bench-registry-"));
const daemons: Daemon[] = [];
const copies = new Set<ChildProcess>();

function cleanupSync(): void {
  for (const c of copies) if (c.pid !== undefined && c.exitCode === null) process.kill(c.pid, "SIGKILL");
  for (const d of daemons) {
    const pid = d.child.pid;
    if (pid !== undefined && d.child.exitCode === null && d.child.signalCode === null) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
  rmSync(work, { recursive: true, force: true });
}
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    console.error(`bench: ${signal}, cleaning up`);
    cleanupSync();
    process.exit(130);
  });
}
const limit = setTimeout(() => {
  console.error(`bench: over the time limit (${String(LIMIT_MS / 60_000)} min), cleaning up`);
  cleanupSync();
  process.exit(124);
}, LIMIT_MS);
limit.unref();

// --- images -------------------------------------------------------------------------------------

/** A benchmark image: one layer. */
interface Image extends OciImage {
  layer: OciBlob;
}

/** An image (in memory) with one layer: a gzipped tar holding `payloadBytes` random bytes. */
function makeImage(payloadBytes: number): Image {
  // gzip level 0 (stored blocks: random data does not compress). skopeo compresses an uncompressed
  // layer for a registry itself, which would time gzip instead of the transfer.
  const image = ociImage([tarArchive([{ path: "payload.bin", content: randomBytes(payloadBytes) }])], {
    gzipLevel: 0,
  });
  const [layer] = image.layers;
  if (!layer) throw new Error("an image without its layer");
  return { ...image, layer };
}

function fileDigest(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash("sha256");
    createReadStream(path)
      .on("data", (d) => h.update(d))
      .on("error", reject)
      .on("end", () => resolve(`sha256:${h.digest("hex")}`));
  });
}

/** What is wrong with the pulled layout `dir` compared with `image` (empty: every digest matches). */
async function verifyLayout(dir: string, image: Image): Promise<string[]> {
  const problems: string[] = [];
  const indexPath = join(dir, "index.json");
  if (!existsSync(indexPath)) return [`${dir}: no index.json`];
  const index = JSON.parse(readFileSync(indexPath, "utf8")) as { manifests?: { digest?: string }[] };
  const got = index.manifests?.[0]?.digest;
  if (got !== image.manifest.digest) {
    problems.push(`${dir}: manifest ${String(got)}, pushed ${image.manifest.digest}`);
  }
  for (const b of [image.manifest, image.config, image.layer]) {
    const path = join(dir, "blobs", "sha256", b.digest.slice(7));
    if (!existsSync(path)) {
      problems.push(`${dir}: blob ${b.digest} missing`);
      continue;
    }
    const digest = await fileDigest(path);
    if (digest !== b.digest) problems.push(`${dir}: blob ${b.digest} has digest ${digest}`);
  }
  return problems;
}

// --- the clients --------------------------------------------------------------------------------

interface Path {
  name: "direct" | "nginx";
  address: string;
  /** Base URL of the registry API for this path. */
  base: string;
  /** Kept-alive connections for the HTTP client (fresh for every measured phase). */
  agent: HttpAgent;
  newAgent: () => HttpAgent;
  /** Authorization header (the HTTP client sends it on every request, as docker does once challenged). */
  authorization?: string;
  /** skopeo's options for this registry, without the src-/dest- prefix. */
  skopeo: string[];
}

/** Problems found: failed copies, wrong digests, unexpected statuses. */
const failures: string[] = [];
const lost: string[] = [];

/** One skopeo copy, bounded; resolves with its exit status and stderr. */
function skopeo(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(tool("skopeo"), ["--insecure-policy", ...args], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    copies.add(child);
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, "SIGKILL");
    }, COPY_TIMEOUT_MS);
    child.on("close", (code) => {
      clearTimeout(timer);
      copies.delete(child);
      resolve({ code, stderr });
    });
  });
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** sha256 and length of the body (the body itself only when `keep`). */
  digest: string;
  length: number;
  body?: Buffer;
}

/**
 * One HTTP request on the path's kept-alive connections. A Buffer body of more than 1 MiB is sent
 * chunked, in 1 MiB writes, as docker streams a layer's PATCH; the reply is hashed as it arrives.
 */
function call(
  path: Path,
  method: string,
  url: string,
  headers: Record<string, string> = {},
  body?: Buffer,
  keep = false,
): Promise<Reply> {
  const target = new URL(url, path.base);
  const send = target.protocol === "https:" ? httpsRequest : httpRequest;
  const h: Record<string, string> = { "User-Agent": "docker/27.3.1 go/go1.22.7 berth-bench", ...headers };
  if (path.authorization !== undefined) h.Authorization = path.authorization;
  const chunked = body !== undefined && body.length > MiB;
  if (body !== undefined && !chunked) h["Content-Length"] = String(body.length);
  if (body === undefined && (method === "PUT" || method === "POST")) h["Content-Length"] = "0";
  return new Promise((resolve, reject) => {
    const req = send(
      target,
      {
        method,
        headers: h,
        agent: path.agent,
        ...(send === httpsRequest ? { servername: SERVER_NAME } : {}),
      },
      (res) => {
        const hash = createHash("sha256");
        const parts: Buffer[] = [];
        let length = 0;
        res.on("data", (d: Buffer) => {
          hash.update(d);
          length += d.length;
          if (keep) parts.push(d);
        });
        res.on("error", reject);
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            digest: `sha256:${hash.digest("hex")}`,
            length,
            ...(keep ? { body: Buffer.concat(parts) } : {}),
          }),
        );
      },
    );
    req.on("error", reject);
    req.setTimeout(COPY_TIMEOUT_MS, () => req.destroy(new Error(`${method} ${url}: timeout`)));
    if (chunked) {
      for (let at = 0; at < body.length; at += MiB) req.write(body.subarray(at, at + MiB));
      req.end();
    } else req.end(body);
  });
}

function expectStatus(what: string, r: Reply, ...ok: number[]): boolean {
  if (ok.includes(r.status)) return true;
  failures.push(`${what}: HTTP ${r.status}${r.body ? `: ${r.body.toString().slice(0, 200)}` : ""}`);
  return false;
}

/** A blob upload as docker does it: HEAD (absent), POST, one streamed PATCH, PUT with the digest. */
async function pushBlob(path: Path, repo: string, b: OciBlob): Promise<boolean> {
  const head = await call(path, "HEAD", `/v2/${repo}/blobs/${b.digest}`);
  if (head.status === 200) return true;
  if (!expectStatus(`HEAD ${repo} ${b.digest}`, head, 404)) return false;
  const start = await call(path, "POST", `/v2/${repo}/blobs/uploads/`, {}, undefined, true);
  if (!expectStatus(`POST ${repo} upload`, start, 202)) return false;
  const patch = await call(
    path,
    "PATCH",
    String(start.headers.location),
    { "Content-Type": "application/octet-stream" },
    b.data,
    true,
  );
  if (!expectStatus(`PATCH ${repo} ${b.digest}`, patch, 202)) return false;
  const location = new URL(String(patch.headers.location), path.base);
  location.searchParams.set("digest", b.digest);
  const put = await call(path, "PUT", location.href, {}, undefined, true);
  return expectStatus(`PUT ${repo} ${b.digest}`, put, 201);
}

async function pushHttp(path: Path, image: Image, repo: string, tag: string): Promise<void> {
  for (const b of [image.layer, image.config]) if (!(await pushBlob(path, repo, b))) return;
  const r = await call(
    path,
    "PUT",
    `/v2/${repo}/manifests/${tag}`,
    { "Content-Type": image.manifest.mediaType },
    image.manifest.data,
    true,
  );
  if (expectStatus(`PUT manifest ${repo}:${tag}`, r, 201)) {
    const digest = r.headers["docker-content-digest"];
    if (digest !== image.manifest.digest)
      lost.push(`${repo}:${tag}: registry says manifest ${String(digest)}`);
  }
}

/** Pulls as docker does (manifest, then config and layer) and checks every digest and size as the bytes arrive. */
async function pullHttp(path: Path, image: Image, repo: string, tag: string): Promise<void> {
  const m = await call(path, "GET", `/v2/${repo}/manifests/${tag}`, { Accept: image.manifest.mediaType });
  if (!expectStatus(`GET manifest ${repo}:${tag}`, m, 200)) return;
  if (m.digest !== image.manifest.digest)
    lost.push(`${repo}:${tag}: manifest ${m.digest}, pushed ${image.manifest.digest}`);
  for (const b of [image.config, image.layer]) {
    const r = await call(path, "GET", `/v2/${repo}/blobs/${b.digest}`);
    if (!expectStatus(`GET ${repo} ${b.digest}`, r, 200)) continue;
    if (r.digest !== b.digest || r.length !== b.size) {
      lost.push(`${repo}: blob ${b.digest} (${b.size} B) came back as ${r.digest} (${r.length} B)`);
    }
  }
}

async function push(path: Path, image: Image, repo: string, tag: string, dir: string): Promise<void> {
  if (CLIENT === "http") return pushHttp(path, image, repo, tag);
  const r = await skopeo([
    "copy",
    "--quiet",
    ...path.skopeo.map((o) => `--dest-${o}`),
    `oci:${dir}:latest`,
    `docker://${path.address}/${repo}:${tag}`,
  ]);
  if (r.code !== 0)
    failures.push(`push ${path.name} ${repo}:${tag}: exit ${String(r.code)}: ${r.stderr.trim()}`);
}

async function pull(path: Path, image: Image, repo: string, tag: string, dir: string): Promise<void> {
  if (CLIENT === "http") return pullHttp(path, image, repo, tag);
  const r = await skopeo([
    "copy",
    "--quiet",
    ...path.skopeo.map((o) => `--src-${o}`),
    `docker://${path.address}/${repo}:${tag}`,
    `oci:${dir}:latest`,
  ]);
  if (r.code !== 0)
    failures.push(`pull ${path.name} ${repo}:${tag}: exit ${String(r.code)}: ${r.stderr.trim()}`);
}

/** Runs `jobs` with `workers` workers, each taking its share in order; returns wall seconds. */
async function timed(workers: number, jobs: (() => Promise<void>)[]): Promise<number> {
  const t0 = performance.now();
  const queues: (() => Promise<void>)[][] = Array.from({ length: workers }, () => []);
  jobs.forEach((j, i) => queues[i % workers]?.push(j));
  await Promise.all(
    queues.map(async (q) => {
      for (const job of q) await job();
    }),
  );
  return (performance.now() - t0) / 1000;
}

// --- CPU readings -------------------------------------------------------------------------------

const TICK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim() || 100);

/** utime+stime of `pid` in seconds (0 when gone). */
function cpuOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / TICK;
  } catch {
    return 0;
  }
}

/** The pids whose parent is `parent` (nginx's workers under its master). */
function childrenOf(parent: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === parent) out.push(Number(entry));
    } catch {
      // gone
    }
  }
  return out;
}

/** The machine's busy and total CPU time so far, seconds (from /proc/stat). */
function machineCpu(): { busy: number; total: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
  const n = line.trim().split(/\s+/).slice(1).map(Number);
  const total = n.reduce((a, b) => a + b, 0);
  const idle = (n[3] ?? 0) + (n[4] ?? 0);
  return { busy: (total - idle) / TICK, total: total / TICK };
}

// --- main ---------------------------------------------------------------------------------------

interface Measurement {
  round: number;
  phase: string;
  path: "direct" | "nginx";
  bytes: number;
  seconds: number;
  nginxCpu: number;
  registryCpu: number;
  /** CPU of this process (the HTTP client; skopeo runs in children and is not counted). */
  clientCpu: number;
  machineBusy: number;
}

function table(header: string[], rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map(String));
  const w = header.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(w[i] ?? 0)).join(" | ")} |`;
  return [line(header), `| ${w.map((n) => "-".repeat(n)).join(" | ")} |`, ...cells.map(line)].join("\n");
}

function versionOf(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  return `${r.stdout}${r.stderr}`.trim().split("\n")[0] ?? "";
}

async function main(): Promise<number> {
  chmodSync(work, 0o755); // nginx's workers (nobody) read the htpasswd file and write temp files here
  const registryPort = await freePort();
  const nginxPort = await freePort();
  const registryAddr = `127.0.0.1:${registryPort}`;
  const plainHttp = EXPERIMENTS.includes("plain-http");

  // TLS as the program issues it (ECDSA P-256), valid for the name and for 127.0.0.1 (skopeo dials the address).
  const certs = join(work, "certs");
  mkdirSync(certs);
  selfSignedCert(tool("openssl"), {
    name: SERVER_NAME,
    ips: ["127.0.0.1"],
    keyPath: join(work, "tls.key"),
    certPath: join(certs, "ca.crt"),
  });

  // A generated password and its htpasswd line, as components/registry.ts makes them.
  const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  const password = Array.from({ length: 32 }, () => alphabet[randomInt(alphabet.length)]).join("");
  const seed = randomBytes(16).toString("hex");
  // --experiment bcrypt5: the line as Berth wrote it before {SSHA} (bcrypt at cost 5), for comparison.
  const line = EXPERIMENTS.includes("bcrypt5")
    ? htpasswdEntry(USER, password, { salt: bcryptSaltFrom(seed, 5), cost: 5 })
    : sshaEntry(USER, password, seed);
  writeFileSync(join(work, "htpasswd"), renderHtpasswd([line]), { mode: 0o644 });

  const registryConfig = join(work, "registry.yml");
  const httpSecret = randomBytes(24).toString("hex");
  writeFileSync(
    registryConfig,
    renderRegistryConfig({ httpSecret, addr: registryAddr, rootDirectory: join(work, "data") }),
  );
  // --experiment direct-tls: the direct path gets a registry of its own (its own storage, the same
  // rendered config) that terminates TLS itself with the same certificate, so that encryption is on
  // both paths; nginx still proxies to the plain one.
  const directTls = EXPERIMENTS.includes("direct-tls");
  const directAddr = directTls ? `127.0.0.1:${await freePort()}` : registryAddr;
  const directConfig = join(work, "registry-direct.yml");
  if (directTls) {
    const yaml = renderRegistryConfig({
      httpSecret,
      addr: directAddr,
      rootDirectory: join(work, "data-direct"),
    });
    const addrLine = `  addr: "${directAddr}"\n`;
    if (!yaml.includes(addrLine)) throw new Error("no http.addr line in the rendered config.yml");
    const tls = `  tls:\n    certificate: "${join(certs, "ca.crt")}"\n    key: "${join(work, "tls.key")}"\n`;
    writeFileSync(directConfig, yaml.replace(addrLine, `${addrLine}${tls}`));
  }

  mkdirSync(join(work, "temp"));
  let conf = renderNginxConfig({
    serverName: SERVER_NAME,
    listenAddress: "127.0.0.1",
    listenPort: nginxPort,
    tlsCertificatePath: join(certs, "ca.crt"),
    tlsKeyPath: join(work, "tls.key"),
    htpasswdPath: join(work, "htpasswd"),
    // An address: nginx needs no resolver for it (the program's `registry:5000` is resolved through
    // Docker's embedded DNS, one query per second of traffic at most).
    upstream: registryAddr,
    pidPath: join(work, "nginx.pid"),
    errorLogPath: join(work, "nginx-error.log"),
    accessLogPath: join(work, "nginx-access.log"),
    tempDir: join(work, "temp"),
  });
  const variant: string[] = [];
  const inLocation = (directive: string) => {
    const marker = "proxy_buffering off;\n";
    const at = conf.indexOf(marker);
    if (at < 0) throw new Error("no proxy_buffering in the rendered location /v2/");
    const indentation = /\n( *)proxy_buffering off;\n/.exec(conf)?.[1] ?? "";
    conf = `${conf.slice(0, at + marker.length)}${indentation}${directive}\n${conf.slice(at + marker.length)}`;
  };
  for (const d of opts.location) {
    inLocation(d);
    variant.push(`location /v2/: ${d}`);
  }
  for (const d of opts.http) {
    conf = conf.replace("http {\n", `http {\n    ${d}\n`);
    variant.push(`http: ${d}`);
  }
  if (EXPERIMENTS.includes("no-auth")) {
    conf = conf.replace(/\n *auth_basic "[^"]*";\n *auth_basic_user_file [^;]*;/, "");
    variant.push("experiment: no basic auth");
  }
  if (plainHttp) {
    conf = conf.replace(`listen 127.0.0.1:${nginxPort} ssl;`, `listen 127.0.0.1:${nginxPort};`);
    variant.push("experiment: no TLS");
  }
  if (EXPERIMENTS.includes("keepalive")) {
    // The variable's value names an upstream block: nginx then uses that group (and its kept-alive
    // connections) instead of a per-request address.
    conf = conf
      .replace(
        "http {\n",
        `http {\n    upstream berth_registry_pool {\n        server ${registryAddr};\n        keepalive 32;\n    }\n`,
      )
      .replace(
        `set $berth_registry ${registryAddr};\n            proxy_pass`,
        "set $berth_registry berth_registry_pool;\n            proxy_pass",
      );
    variant.push("experiment: upstream block with keepalive 32");
  }
  const nginxConf = join(work, "nginx.conf");
  writeFileSync(nginxConf, conf);

  const ca = readFileSync(join(certs, "ca.crt"), "utf8");
  const registry = await startRegistry(tool("docker-registry"), registryConfig, registryAddr);
  daemons.push(registry);
  const directRegistry = directTls
    ? await startRegistry(tool("docker-registry"), directConfig, directAddr, { ca, servername: SERVER_NAME })
    : registry;
  if (directTls) {
    daemons.push(directRegistry);
    variant.push("experiment: the direct path to a second registry over its own TLS");
  }
  const nginxBase = `${plainHttp ? "http" : "https"}://127.0.0.1:${nginxPort}`;
  const nginx = await startNginx(
    tool("nginx"),
    work,
    nginxConf,
    // /healthz through nginx to the registry.
    () =>
      new Promise<boolean>((resolve) => {
        const send = plainHttp ? httpRequest : httpsRequest;
        const req = send(`${nginxBase}/healthz`, { ca, servername: SERVER_NAME }, (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        });
        req.on("error", () => resolve(false));
        req.setTimeout(2_000, () => req.destroy());
        req.end();
      }),
  );
  daemons.push(nginx);

  const keepAlive = { keepAlive: true, maxSockets: 64 };
  const paths: Path[] = [
    {
      name: "direct",
      address: directAddr,
      base: `${directTls ? "https" : "http"}://${directAddr}`,
      agent: new HttpAgent(keepAlive),
      newAgent: () => (directTls ? new HttpsAgent({ ...keepAlive, ca }) : new HttpAgent(keepAlive)),
      skopeo: directTls ? [`cert-dir=${certs}`] : ["tls-verify=false"],
    },
    {
      name: "nginx",
      address: `127.0.0.1:${nginxPort}`,
      base: nginxBase,
      agent: new HttpAgent(),
      newAgent: () => (plainHttp ? new HttpAgent(keepAlive) : new HttpsAgent({ ...keepAlive, ca })),
      authorization: `Basic ${Buffer.from(`${USER}:${password}`).toString("base64")}`,
      skopeo: [...(plainHttp ? ["tls-verify=false"] : [`cert-dir=${certs}`]), `creds=${USER}:${password}`],
    },
  ];

  const sizes = Array.from({ length: PUSHERS * IMAGES }, () => 3 * MiB + randomInt(2 * MiB + 1));
  const measurements: Measurement[] = [];
  const nginxPid = nginx.child.pid ?? 0;
  const registryPidOf = (path: Path) => (path.name === "direct" ? directRegistry : registry).child.pid ?? 0;
  const nginxCpuNow = () => cpuOf(nginxPid) + childrenOf(nginxPid).reduce((s, p) => s + cpuOf(p), 0);

  async function measure(
    round: number,
    phase: string,
    path: Path,
    bytes: number,
    workers: number,
    jobs: (() => Promise<void>)[],
  ): Promise<void> {
    // New connections for every phase (as a new docker push would open), none left idle from before.
    path.agent.destroy();
    path.agent = path.newAgent();
    const n0 = nginxCpuNow();
    const registryPid = registryPidOf(path);
    const r0 = cpuOf(registryPid);
    const m0 = machineCpu();
    const c0 = process.cpuUsage();
    const seconds = await timed(workers, jobs);
    const c1 = process.cpuUsage(c0);
    const m1 = machineCpu();
    measurements.push({
      round,
      phase,
      path: path.name,
      bytes,
      seconds,
      nginxCpu: nginxCpuNow() - n0,
      registryCpu: cpuOf(registryPid) - r0,
      clientCpu: (c1.user + c1.system) / 1e6,
      machineBusy: (m1.busy - m0.busy) / Math.max(m1.total - m0.total, 1e-9),
    });
    console.error(`  round ${round} ${phase} ${path.name}: ${seconds.toFixed(2)} s`);
  }

  // Warm-up, not measured: connections, the registry's first writes, nginx's first requests.
  for (const p of paths) {
    p.agent = p.newAgent();
    const warm = makeImage(MiB);
    const dir = join(work, "warm", p.name);
    if (CLIENT === "skopeo") writeOciLayout(dir, warm);
    await push(p, warm, `bench/warm-${p.name}`, "latest", dir);
    await pull(p, warm, `bench/warm-${p.name}`, "latest", `${dir}-pulled`);
  }

  const load0 = loadavg();
  const started = new Date();
  let imageCount = 0;
  for (let round = 1; round <= ROUNDS; round++) {
    const order = round % 2 === 1 ? paths : [...paths].reverse();
    console.error(`round ${round}: generating images`);
    interface Job {
      image: Image;
      repo: string;
      tag: string;
      /** OCI layouts for skopeo: the source, and where the pull goes. */
      src: string;
      out: string;
    }
    const jobs = new Map<string, Job[]>();
    const bigs = new Map<string, Job>();
    const job = (p: Path, image: Image, name: string, repo: string, tag: string): Job => {
      const j = {
        image,
        repo,
        tag,
        src: join(work, "images", `r${round}-${p.name}-${name}`),
        out: join(work, "pulled", `r${round}-${p.name}-${name}`),
      };
      if (CLIENT === "skopeo") writeOciLayout(j.src, image);
      return j;
    };
    mkdirSync(join(work, "pulled"), { recursive: true });
    for (const p of paths) {
      jobs.set(
        p.name,
        sizes.map((size, i) =>
          job(
            p,
            makeImage(size),
            String(i),
            `bench/r${round}-${p.name}-${i % PUSHERS}`,
            `img${Math.floor(i / PUSHERS)}`,
          ),
        ),
      );
      if (BIG_MIB > 0)
        bigs.set(p.name, job(p, makeImage(BIG_MIB * MiB), "big", `bench/r${round}-${p.name}-big`, "latest"));
    }
    const mine = (p: Path) => jobs.get(p.name) ?? [];
    const bytesOf = (list: Job[]) => list.reduce((s, j) => s + j.image.layer.size, 0);

    for (const p of order) {
      const list = mine(p);
      await measure(
        round,
        "push",
        p,
        bytesOf(list),
        PUSHERS,
        list.map((j) => () => push(p, j.image, j.repo, j.tag, j.src)),
      );
    }
    for (const p of order) {
      const list = mine(p);
      await measure(
        round,
        "pull",
        p,
        bytesOf(list),
        PUSHERS,
        list.map((j) => () => pull(p, j.image, j.repo, j.tag, j.out)),
      );
    }
    for (const p of order) {
      const big = bigs.get(p.name);
      if (big === undefined) continue;
      await measure(round, "big push", p, big.image.layer.size, 1, [
        () => push(p, big.image, big.repo, big.tag, big.src),
      ]);
    }
    for (const p of order) {
      const big = bigs.get(p.name);
      if (big === undefined) continue;
      await measure(round, "big pull", p, big.image.layer.size, 1, [
        () => pull(p, big.image, big.repo, big.tag, big.out),
      ]);
    }
    for (const p of paths) {
      const all = [...mine(p), ...(bigs.has(p.name) ? [bigs.get(p.name) as Job] : [])];
      imageCount += all.length;
      // skopeo checked the digests while pulling; check the layouts it wrote as well.
      if (CLIENT === "skopeo") for (const j of all) lost.push(...(await verifyLayout(j.out, j.image)));
    }
    // Free the disk before the next round (the registry keeps its copies).
    rmSync(join(work, "images"), { recursive: true, force: true });
    rmSync(join(work, "pulled"), { recursive: true, force: true });
  }
  const load1 = loadavg();

  // --- statuses: nginx's access log and the registry's own log --------------------------------------
  const access = readFileSync(join(work, "nginx-access.log"), "utf8")
    .split("\n")
    .filter((l) => l !== "");
  const nginxStatus = new Map<number, number>();
  for (const l of access) {
    const m = /" (\d{3}) /.exec(l);
    if (m) nginxStatus.set(Number(m[1]), (nginxStatus.get(Number(m[1])) ?? 0) + 1);
  }
  const registryStatus = new Map<number, number>();
  const registryOutput = registry.output() + (directTls ? directRegistry.output() : "");
  for (const m of registryOutput.matchAll(/http\.response\.status=(\d{3})/g)) {
    registryStatus.set(Number(m[1]), (registryStatus.get(Number(m[1])) ?? 0) + 1);
  }
  const errorLog = readFileSync(join(work, "nginx-error.log"), "utf8");
  const bad = (s: Map<number, number>) => [...s].filter(([c]) => c === 413 || c >= 500);
  const fmt = (s: Map<number, number>) =>
    [...s]
      .sort(([a], [b]) => a - b)
      .map(([c, n]) => `${c}×${n}`)
      .join(", ");

  // --- report ------------------------------------------------------------------------------------
  const mibs = (m: Measurement) => m.bytes / MiB / m.seconds;
  const phases = ["push", "pull", "big push", "big pull"];
  const rows: (string | number)[][] = [];
  for (const m of measurements) {
    const other = measurements.find((x) => x.round === m.round && x.phase === m.phase && x.path === "direct");
    rows.push([
      m.round,
      m.phase,
      m.path,
      (m.bytes / MiB).toFixed(1),
      m.seconds.toFixed(2),
      mibs(m).toFixed(1),
      m.path === "nginx" && other ? (mibs(m) / mibs(other)).toFixed(2) : "",
      m.path === "nginx" ? m.nginxCpu.toFixed(2) : "",
      m.registryCpu.toFixed(2),
      CLIENT === "http" ? m.clientCpu.toFixed(2) : "",
      `${(m.machineBusy * 100).toFixed(0)}%`,
    ]);
  }
  const summary: (string | number)[][] = [];
  for (const phase of phases) {
    const of = (path: string) => measurements.filter((m) => m.phase === phase && m.path === path);
    const rate = (list: Measurement[]) =>
      list.reduce((s, m) => s + m.bytes, 0) / MiB / list.reduce((s, m) => s + m.seconds, 0);
    const d = of("direct");
    const n = of("nginx");
    if (d.length === 0) continue;
    const perRound = n.map((m) => {
      const dm = d.find((x) => x.round === m.round);
      return dm ? mibs(m) / mibs(dm) : NaN;
    });
    summary.push([
      phase,
      rate(d).toFixed(1),
      rate(n).toFixed(1),
      (rate(n) / rate(d)).toFixed(2),
      `${Math.min(...perRound).toFixed(2)}–${Math.max(...perRound).toFixed(2)}`,
    ]);
  }

  console.log(`# bench/registry.ts, ${started.toISOString()}`);
  console.log(
    `${PUSHERS} pushers × ${IMAGES} images (one 3-5 MiB layer each), one ${BIG_MIB} MiB layer, ${ROUNDS} round(s); ` +
      `${cpus().length} cores, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, load average ${load0.map((x) => x.toFixed(2)).join(" ")} before, ${load1.map((x) => x.toFixed(2)).join(" ")} after`,
  );
  console.log(
    `${versionOf(tool("nginx"), ["-v"])}; ${versionOf(tool("docker-registry"), ["--version"])}; ${versionOf(tool("skopeo"), ["--version"])}; node ${process.version}`,
  );
  console.log(
    `nginx config: the program's rendering${variant.length > 0 ? `, changed: ${variant.join("; ")}` : " (unchanged)"}`,
  );
  console.log("");
  console.log(
    table(
      [
        "round",
        "phase",
        "path",
        "MiB",
        "s",
        "MiB/s",
        "nginx/direct",
        "nginx CPU s",
        "registry CPU s",
        "client CPU s",
        "machine busy",
      ],
      rows,
    ),
  );
  console.log("");
  console.log(
    table(["phase", "direct MiB/s", "nginx MiB/s", "nginx/direct (all rounds)", "per round"], summary),
  );
  console.log("");
  console.log(`nginx statuses: ${fmt(nginxStatus)} (${access.length} requests)`);
  console.log(`registry statuses: ${fmt(registryStatus)}`);
  const problems = [
    ...failures,
    ...lost,
    ...bad(nginxStatus).map(([c, n]) => `nginx answered ${c} ${n} time(s)`),
    ...bad(registryStatus).map(([c, n]) => `the registry answered ${c} ${n} time(s)`),
    ...(/too large body/.test(errorLog) ? ["nginx: client intended to send too large body"] : []),
  ];
  if (problems.length === 0) {
    console.log(
      `checked: all ${imageCount} images pulled back with every digest matching; no 413, no 5xx, no failed copy`,
    );
    return 0;
  }
  console.log(`PROBLEMS (${problems.length}):\n${problems.slice(0, 50).join("\n")}`);
  return 1;
}

let code = 1;
try {
  code = await main();
} catch (e) {
  console.error(e);
} finally {
  for (const d of daemons.reverse()) await d.stop();
  cleanupSync();
}
process.exit(code);
