/**
 * Real programs started as daemons on 127.0.0.1, shared by the benchmarks in bench/ and the tests
 * (test/renderers/helpers.ts re-exports these; bench/ never imports from test/).
 *
 * Every daemon is one child process stopped by its own pid (SIGTERM, then SIGKILL after 5 s); a
 * daemon that never becomes ready is stopped before the error is thrown, so callers only ever hold
 * daemons that answered. Waits are bounded.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { createServer } from "node:net";
import { delimiter, join } from "node:path";
import { request as httpsRequest } from "node:https";

/** Resolves `tool` (an absolute path or a name looked up in PATH, then the sbin directories) to an executable path, or undefined. */
export function findTool(tool: string): string | undefined {
  const candidates = tool.includes("/")
    ? [tool]
    : (process.env.PATH ?? "")
        .split(delimiter)
        .filter((dir) => dir !== "")
        .concat(["/usr/sbin", "/sbin"])
        .map((dir) => join(dir, tool));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; try the next one
    }
  }
  return undefined;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      if (addr === null || typeof addr === "string") {
        reject(new Error("no port"));
        return;
      }
      srv.close(() => resolve(addr.port));
    });
  });
}

/** A daemon we started; `stop()` ends exactly this process (by pid). */
export interface Daemon {
  child: ChildProcess;
  /** Everything it wrote to stdout and stderr so far. */
  output: () => string;
  stop: () => Promise<void>;
}

export function startDaemon(cmd: string, args: readonly string[]): Daemon {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    child.once("exit", () => resolve());
  });
  return {
    child,
    output: () => out,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
      process.kill(child.pid, "SIGTERM");
      const timer = setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
          process.kill(child.pid, "SIGKILL");
        }
      }, 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Polls `probe` (every 100 ms) until it resolves true or the deadline passes. */
export async function waitFor(
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await probe()) return;
    } catch {
      // not ready yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Starts `cmd args` and waits until `ready` resolves true; when it never does (or the program
 * exits), stops it by its pid and throws with its output.
 */
export async function startReadyDaemon(
  what: string,
  cmd: string,
  args: readonly string[],
  ready: () => Promise<boolean>,
  timeoutMs = 15_000,
): Promise<Daemon> {
  const daemon = startDaemon(cmd, args);
  const gone = () => daemon.child.exitCode !== null || daemon.child.signalCode !== null;
  try {
    // A program that exits ends the wait at once (no point polling it until the deadline).
    await waitFor(what, async () => gone() || (await ready()), timeoutMs);
    if (gone()) {
      throw new Error(`${what} exited (${String(daemon.child.exitCode ?? daemon.child.signalCode)})`);
    }
  } catch (e) {
    // The caller never gets the daemon: stop it here, by its pid.
    await daemon.stop();
    throw new Error(`${String(e)}\n${daemon.output()}`, { cause: e });
  }
  return daemon;
}

/**
 * The real nginx on the config file `conf` (prefix `dir`), in the foreground, ready once `ready`
 * (e.g. a GET of /healthz over TLS) says so.
 */
export function startNginx(
  nginx: string,
  dir: string,
  conf: string,
  ready: () => Promise<boolean>,
): Promise<Daemon> {
  return startReadyDaemon(
    "nginx",
    nginx,
    ["-e", "stderr", "-p", dir, "-c", conf, "-g", "daemon off;"],
    ready,
  );
}

/**
 * The real distribution registry (`docker-registry serve <config>`), ready once `GET /v2/` on
 * `addr` (`127.0.0.1:port`, as in the config) answers 200; over TLS (trusting `tls.ca`) when the
 * config has `http.tls`.
 */
export function startRegistry(
  registry: string,
  config: string,
  addr: string,
  tls?: { ca: string; servername: string },
): Promise<Daemon> {
  return startReadyDaemon("docker-registry", registry, ["serve", config], async () => {
    if (!tls) {
      const r = await fetch(`http://${addr}/v2/`);
      await r.arrayBuffer();
      return r.status === 200;
    }
    return new Promise<boolean>((resolve) => {
      const req = httpsRequest(`https://${addr}/v2/`, tls, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on("error", () => resolve(false));
      req.setTimeout(2_000, () => req.destroy());
      req.end();
    });
  });
}

/**
 * A self-signed ECDSA P-256 server certificate (the curve the program's certificates use) for
 * `name` and the given IP addresses, valid two days, made with `openssl req`; the key is written to
 * `keyPath`, the certificate (which clients trust as its own CA) to `certPath`. Throws with
 * openssl's message when it fails.
 */
export function selfSignedCert(
  openssl: string,
  opts: { name: string; ips?: readonly string[]; keyPath: string; certPath: string },
): void {
  const san = [`DNS:${opts.name}`, ...(opts.ips ?? []).map((ip) => `IP:${ip}`)].join(",");
  const r = spawnSync(
    openssl,
    [
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
      `/CN=${opts.name}`,
      "-addext",
      `subjectAltName=${san}`,
      "-keyout",
      opts.keyPath,
      "-out",
      opts.certPath,
    ],
    { encoding: "utf8" },
  );
  if (r.status !== 0) throw new Error(`openssl req: ${r.stderr}`);
}
