/**
 * berth-slot (images/jenkins-agent/berth-slot) without a Docker engine: its usage errors, slot
 * names it refuses before reaching Docker, and that the agent stand-in ships the same file. What it
 * does with Docker (replacing a slot's application, keeping the old one when the new one is
 * unhealthy) is proven on a real engine by test/e2e/slots.test.ts.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { resolve } from "node:path";

import { describe, expect, it } from "vitest";

import { PROJECT_ROOT } from "../../config/root.ts";

const SCRIPT = resolve(PROJECT_ROOT, "images/jenkins-agent/berth-slot");
const STANDIN_COPY = resolve(PROJECT_ROOT, "images/standins/jenkins-agent/berth-slot");

const slot = (...args: string[]) => {
  // No docker on PATH: anything that reached Docker would fail differently.
  const r = spawnSync("bash", [SCRIPT, ...args], { encoding: "utf8", env: { PATH: "/usr/bin:/bin" } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
};

describe("berth-slot", () => {
  it("the agent stand-in ships exactly the real image's script, executable, and both Dockerfiles install it", () => {
    expect(readFileSync(STANDIN_COPY, "utf8")).toBe(readFileSync(SCRIPT, "utf8"));
    for (const f of [SCRIPT, STANDIN_COPY]) expect(statSync(f).mode & 0o111).toBe(0o111);
    for (const d of ["images/jenkins-agent/Dockerfile", "images/standins/jenkins-agent/Dockerfile"])
      expect(readFileSync(resolve(PROJECT_ROOT, d), "utf8")).toMatch(
        /^COPY berth-slot \/usr\/local\/bin\/berth-slot$/m,
      );
  });

  it("refuses wrong usage with exit 2", () => {
    for (const args of [
      [],
      ["deploy"],
      ["deploy", "shop"],
      ["status"],
      ["status", "a", "b"],
      ["remove", "a"],
    ]) {
      const r = slot(...args);
      expect(r.status, args.join(" ")).toBe(2);
      expect(r.stderr).toMatch(/^usage: berth-slot deploy <slot> <image>/);
    }
  });

  it("refuses a slot name that cannot be one before it asks Docker", () => {
    for (const name of ["Shop", "-shop", "shop_1", "../x", ""]) {
      const r = slot("deploy", name, "app:1");
      expect(r.status, name).toBe(1);
      expect(r.stderr).toContain(`"${name}" is not a slot name`);
    }
  });
});
