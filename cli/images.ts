/**
 * `berth images check <stack>`: are the stack's image pins still what their tags point to?
 *
 * The pins are the references the program registers (`docker.RemoteImage` names, found by running
 * the real program under mocks), plus a per-build agent image given as a pinned reference. Each is
 * looked up with `skopeo inspect --raw`: the pinned digest must still exist in its repository, and
 * the tag's current manifest (its digest is the SHA-256 of the raw bytes, as the registry computes
 * it) should be the pinned one. `--registry` sends every lookup to one registry instead (a mirror
 * of Docker Hub, or a registry on loopback in tests), keeping repository paths.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { runStack, type StackRun } from "../plan/run.ts";

/** A parsed image reference, with Docker Hub's implicit parts filled in. */
export interface ImageRef {
  /** Registry host (and port), `docker.io` for Docker Hub. */
  registry: string;
  /** Repository path in that registry, `library/redis` for Docker Hub's official images. */
  repository: string;
  tag: string | undefined;
  /** `sha256:<64 hex>` when pinned. */
  digest: string | undefined;
}

const DOCKER_HUB = "docker.io";

/** Splits `[registry/]repo[:tag][@digest]` as Docker does (the first part is a registry when it has a dot or a port, or is `localhost`). */
export function parseReference(ref: string): ImageRef {
  const at = ref.indexOf("@");
  const digest = at >= 0 ? ref.slice(at + 1) : undefined;
  const named = at >= 0 ? ref.slice(0, at) : ref;
  const slash = named.lastIndexOf("/");
  const colon = named.lastIndexOf(":");
  const tag = colon > slash ? named.slice(colon + 1) : undefined;
  const name = colon > slash ? named.slice(0, colon) : named;
  const first = name.split("/")[0] ?? name;
  const hasRegistry =
    name.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost");
  const registry = hasRegistry ? first : DOCKER_HUB;
  let repository = hasRegistry ? name.slice(first.length + 1) : name;
  if (registry === DOCKER_HUB && !repository.includes("/")) repository = `library/${repository}`;
  return { registry, repository, tag, digest };
}

export type PinStatus =
  /** The tag still points to the pinned digest. */
  | "current"
  /** The pinned digest exists, but the tag has moved to another one: a newer image is out. */
  | "outdated"
  /** The pinned digest (or the tag) is not in the repository: a pull would fail. */
  | "missing"
  /** The lookup itself failed (registry unreachable, refused credentials, …). */
  | "error";

export interface PinCheck {
  ref: string;
  status: PinStatus;
  /** The digest the tag points to now, when it could be read. */
  tagDigest?: string;
  /** Why, for anything but `current`. */
  detail?: string;
}

export interface CheckOptions {
  /** Look every repository up in this registry (`host[:port]`) instead of its own. */
  registry?: string;
  /** Verify the registry's TLS certificate (skopeo `--tls-verify`); off for a plain-HTTP mirror. */
  tlsVerify: boolean;
  /** The skopeo binary. */
  skopeo?: string;
  /** Per lookup. */
  timeoutMs?: number;
}

type Lookup = { ok: true; raw: Buffer } | { ok: false; notFound: boolean; message: string };

function inspectRaw(target: string, opts: CheckOptions): Promise<Lookup> {
  const args = ["inspect", "--raw", `--tls-verify=${opts.tlsVerify}`, `docker://${target}`];
  return new Promise((resolve) => {
    execFile(
      opts.skopeo ?? "skopeo",
      args,
      { encoding: "buffer", timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (!err) return resolve({ ok: true, raw: stdout });
        const message = (stderr.toString().trim().split("\n").pop() ?? "") || err.message;
        // distribution answers MANIFEST_UNKNOWN (tag or digest) and NAME_UNKNOWN (repository).
        const notFound = /manifest unknown|name unknown|not found/i.test(stderr.toString());
        resolve({ ok: false, notFound, message });
      },
    );
  });
}

const sha256 = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** Checks one pinned reference. */
export async function checkPin(ref: string, opts: CheckOptions): Promise<PinCheck> {
  const r = parseReference(ref);
  if (!r.digest || !r.tag)
    return { ref, status: "error", detail: "not pinned as repo:tag@sha256:… (nothing to compare)" };
  const base = `${opts.registry ?? r.registry}/${r.repository}`;
  const [pinned, tagged] = await Promise.all([
    inspectRaw(`${base}@${r.digest}`, opts),
    inspectRaw(`${base}:${r.tag}`, opts),
  ]);
  const tagDigest = tagged.ok ? sha256(tagged.raw) : undefined;
  if (!pinned.ok && !pinned.notFound) return { ref, status: "error", detail: pinned.message };
  if (!tagged.ok && !tagged.notFound) return { ref, status: "error", detail: tagged.message };
  if (!pinned.ok)
    return {
      ref,
      status: "missing",
      ...(tagDigest ? { tagDigest } : {}),
      detail: `${r.digest} is not in ${base}${tagDigest ? `; :${r.tag} is ${tagDigest}` : ""}`,
    };
  if (sha256(pinned.raw) !== r.digest)
    return { ref, status: "error", detail: `${base} served a manifest whose digest is not ${r.digest}` };
  if (!tagDigest)
    return { ref, status: "missing", detail: `tag :${r.tag} is not in ${base} (the pin still pulls)` };
  if (tagDigest !== r.digest)
    return { ref, status: "outdated", tagDigest, detail: `:${r.tag} now points to ${tagDigest}` };
  return { ref, status: "current", tagDigest };
}

/** The pinned references a program run registers: every RemoteImage, and a pinned per-build image. */
export function pinsOf(run: StackRun): string[] {
  const refs = new Set<string>();
  for (const r of run.resources) {
    if (r.type !== "docker:index/remoteImage:RemoteImage") continue;
    const name = r.inputs["name"];
    if (typeof name === "string") refs.add(name);
  }
  const perBuild = run.config.jenkins.perBuild;
  if (perBuild.enabled && perBuild.imageSource === "pinned") refs.add(perBuild.image);
  return [...refs].sort();
}

/** Checks at most `parallel` pins at a time; results in the order of `refs`. */
export async function checkPins(
  refs: readonly string[],
  opts: CheckOptions,
  parallel = 4,
): Promise<PinCheck[]> {
  const results = new Map<number, PinCheck>();
  const queue = refs.map((ref, i) => ({ ref, i }));
  const worker = async () => {
    for (let job = queue.shift(); job; job = queue.shift()) results.set(job.i, await checkPin(job.ref, opts));
  };
  await Promise.all(Array.from({ length: Math.min(parallel, refs.length) }, worker));
  return refs.map((ref, i) => results.get(i) ?? { ref, status: "error", detail: "not checked" });
}

const short = (d: string | undefined) => (d ? d.slice(0, 19) : "-");

/** A plain-text table of the checks and a closing line. */
export function formatChecks(checks: readonly PinCheck[], where: string): string {
  const rows = checks.map((c) => {
    const r = parseReference(c.ref);
    const name = c.ref.split("@")[0] ?? c.ref;
    return [c.status, name, short(r.digest), short(c.tagDigest), c.detail ?? ""];
  });
  const head = ["status", "image", "pinned", "tag now", "detail"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  const counts = (s: PinStatus) => checks.filter((c) => c.status === s).length;
  return [
    `Image pins checked against ${where}:`,
    line(head),
    ...rows.map(line),
    "",
    `${checks.length} pins: ${counts("current")} current, ${counts("outdated")} outdated, ${counts("missing")} missing, ${counts("error")} lookup errors`,
  ].join("\n");
}

/** A `--registry` value: `host` or `host:port`. */
export const REGISTRY_ARG = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:\d{1,5})?$/;

/** Exit codes: 0 every pin current; 3 a pin is outdated or missing; 1 a lookup failed. */
export const EXIT_PINS_STALE = 3;

export interface ImagesCheckResult {
  text: string;
  code: number;
}

/** `berth images check <stack>`: runs the program offline for its pins, then checks each. */
export async function imagesCheck(
  root: string,
  stack: string,
  opts: CheckOptions,
): Promise<ImagesCheckResult> {
  const run = await runStack(root, stack);
  const checks = await checkPins(pinsOf(run), opts);
  const text = formatChecks(checks, opts.registry ?? "each image's own registry");
  const code = checks.some((c) => c.status === "error")
    ? 1
    : checks.some((c) => c.status !== "current")
      ? EXIT_PINS_STALE
      : 0;
  return { text, code };
}
