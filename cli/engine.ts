/**
 * A small Docker Engine API client for `berth drift`, reaching dockerd the ways the program's
 * Docker provider does (components/docker-host.ts): `ssh://user@host` (ssh runs
 * `docker system dial-stdio` on the host, as the docker CLI does), `tcp://host:port` with mutual
 * TLS (the controller's client certificate from the stack outputs), or a local
 * `unix:///path/to/docker.sock`.
 */
import { spawn } from "node:child_process";
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { request as httpsRequest, type RequestOptions } from "node:https";
import { Duplex } from "node:stream";
import { DEFAULT_SSH_OPTS } from "../config/docker.ts";
import { readReply, replyBody, replyMessage } from "../lib/engine-reply.ts";
import type { Json } from "../lib/json.ts";

export class EngineError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = "EngineError";
  }
}

/** Client certificate material for a `tcp://` endpoint (PEM contents). */
export interface EngineTls {
  caPem: string;
  certPem: string;
  keyPem: string;
}

/** ssh options of the provider, batch mode added. */
const SSH_OPTS = [...DEFAULT_SSH_OPTS, "-o", "BatchMode=yes"];

/** The Engine API behind one endpoint URL. */
export class Engine {
  private readonly base: RequestOptions;
  private readonly secure: boolean;
  private readonly sshAgent?: HttpAgent;

  constructor(
    readonly url: string,
    tls?: EngineTls,
  ) {
    const u = parseEngineUrl(url);
    this.secure = false;
    if (u.kind === "unix") {
      this.base = { socketPath: u.path };
    } else if (u.kind === "tcp") {
      if (!tls)
        throw new EngineError(
          `${url}: a tcp:// endpoint needs the client certificate (dockerd only listens with mutual TLS)`,
        );
      this.secure = true;
      this.base = { host: u.host, port: u.port, ca: tls.caPem, cert: tls.certPem, key: tls.keyPem };
    } else {
      // One ssh connection carries the requests one after another (keep-alive, one socket).
      const agent = new HttpAgent({ keepAlive: true, maxSockets: 1 });
      const target = u.target;
      const sshPort = u.port;
      (agent as unknown as { createConnection: () => Duplex }).createConnection = () => {
        const child = spawn(
          "ssh",
          [...SSH_OPTS, ...(sshPort ? ["-p", sshPort] : []), target, "docker", "system", "dial-stdio"],
          { stdio: ["pipe", "pipe", "pipe"] },
        );
        let stderr = "";
        child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
        const duplex = Duplex.from({ readable: child.stdout, writable: child.stdin });
        child.on("exit", (code) => {
          if (code !== 0)
            duplex.destroy(new EngineError(`ssh ${target}: exit ${String(code)}: ${stderr.trim()}`));
        });
        child.on("error", (e) => duplex.destroy(e));
        duplex.on("close", () => child.kill());
        return duplex;
      };
      this.sshAgent = agent;
      this.base = { agent };
    }
  }

  /** One API call; the parsed JSON body (null when empty). Throws {@link EngineError} on HTTP ≥ 400. */
  call(method: string, path: string): Promise<Json> {
    return new Promise((resolve, reject) => {
      const req = (this.secure ? httpsRequest : httpRequest)(
        { ...this.base, method, path, headers: { Host: "docker" }, timeout: 60_000 },
        (res) => {
          readReply(res).then(({ status, text }) => {
            if (status >= 400)
              reject(
                new EngineError(`${method} ${path}: HTTP ${String(status)}: ${replyMessage(text)}`, status),
              );
            else resolve(replyBody(text));
          }, reject);
        },
      );
      req.on("timeout", () => req.destroy(new EngineError(`${method} ${path}: timed out`)));
      req.on("error", (e) =>
        reject(
          e instanceof EngineError ? e : new EngineError(`${this.url}: ${method} ${path}: ${e.message}`),
        ),
      );
      req.end();
    });
  }

  /** GET that returns undefined on 404. */
  async find(path: string): Promise<Json | undefined> {
    try {
      return await this.call("GET", path);
    } catch (e) {
      if (e instanceof EngineError && e.status === 404) return undefined;
      throw e;
    }
  }

  close(): void {
    this.sshAgent?.destroy();
  }
}

type EngineUrl =
  | { kind: "unix"; path: string }
  | { kind: "tcp"; host: string; port: number }
  | { kind: "ssh"; target: string; port?: string };

/** Parses `unix:///path`, `tcp://host:port` or `ssh://[user@]host[:port]`; throws on anything else. */
export function parseEngineUrl(url: string): EngineUrl {
  let m = /^unix:\/\/(\/.+)$/.exec(url);
  if (m) return { kind: "unix", path: m[1] as string };
  m = /^tcp:\/\/([^/:]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/.exec(url);
  if (m) return { kind: "tcp", host: (m[1] as string).replace(/^\[|\]$/g, ""), port: Number(m[2]) };
  m = /^ssh:\/\/((?:[A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(url);
  if (m) return { kind: "ssh", target: m[1] as string, ...(m[2] ? { port: m[2] } : {}) };
  throw new EngineError(
    `${JSON.stringify(url)} is not a Docker endpoint: use unix:///path/to/docker.sock, tcp://host:port (mutual TLS) or ssh://user@host`,
  );
}
