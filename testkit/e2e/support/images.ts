/**
 * The map from upstream images (as pinned in config/images.ts) to the stand-ins built from Debian
 * packages by images/standins/build.sh (images/standins/images.json).
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

import { REPO_ROOT } from "./engine.ts";

export interface StandinEntry {
  /** Where Berth names the upstream image, e.g. `DEFAULT_IMAGES.registry`. */
  source: string;
  /** The pinned upstream reference. */
  upstream: string;
  /** Stand-in tag, `berth-standin/<name>:latest`. */
  standin: string;
  debianPackages: string[];
  /** Set when the stand-in is a substitute, not the same program (why, and what it covers). */
  substitute?: string;
  /** Set when the stand-in carries more than upstream (what, and why). */
  extra?: string;
}

export interface StandinMap {
  base: string;
  images: StandinEntry[];
  notBuilt: Record<string, string>;
}

export const STANDINS_DIR = resolve(REPO_ROOT, "images/standins");

export function loadStandinMap(): StandinMap {
  return JSON.parse(readFileSync(resolve(STANDINS_DIR, "images.json"), "utf8")) as StandinMap;
}

/** The repository part of a reference: `jenkins/ssh-agent:6@sha256:…` → `jenkins/ssh-agent`. */
function repository(ref: string): string {
  const noDigest = ref.split("@")[0] ?? ref;
  const slash = noDigest.lastIndexOf("/");
  const colon = noDigest.lastIndexOf(":");
  return colon > slash ? noDigest.slice(0, colon) : noDigest;
}

/**
 * The stand-in for an upstream reference: the exact pinned reference first, else the same
 * repository (a stack that pins another digest or tag of the same image). Throws when there is none.
 */
export function standinFor(ref: string, map: StandinMap = loadStandinMap()): string {
  const exact = map.images.find((e) => e.upstream === ref);
  if (exact) return exact.standin;
  const repo = repository(ref);
  const sameRepo = map.images.find((e) => repository(e.upstream) === repo);
  if (sameRepo) return sameRepo.standin;
  throw new Error(`no stand-in image for ${ref} (images/standins/images.json)`);
}
