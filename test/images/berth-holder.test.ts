/**
 * berth-holder (images/jenkins-agent/berth-holder) without a Docker engine: the container names it
 * derives from build ids, its usage errors, and that the agent stand-in ships the same file. What it
 * does with Docker is proven on a real engine by test/e2e/holder.test.ts.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

import { describe, expect, it } from "vitest";

import { PROJECT_ROOT } from "../../config/root.ts";
import { HOLDER_CHECK_SCRIPT, HOLDER_FORWARD_SCRIPT } from "../../components/services.ts";

const SCRIPT = resolve(PROJECT_ROOT, "images/jenkins-agent/berth-holder");
const STANDIN_COPY = resolve(PROJECT_ROOT, "images/standins/jenkins-agent/berth-holder");

const holder = (...args: string[]) => {
  const r = spawnSync("bash", [SCRIPT, ...args], { encoding: "utf8", env: { PATH: process.env.PATH ?? "" } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
};
const nameOf = (id: string) => {
  const r = holder("name", id);
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trim();
};

describe("berth-holder", () => {
  it("the agent stand-in ships exactly the real image's script", () => {
    expect(readFileSync(STANDIN_COPY, "utf8")).toBe(readFileSync(SCRIPT, "utf8"));
  });

  it("names a build's holder after its id: unchanged when the id is already a plain name", () => {
    expect(nameOf("build-1")).toBe("berth-holder-build-1");
    expect(nameOf("jenkins-berth-main-42")).toBe("berth-holder-jenkins-berth-main-42");
  });

  it("gives ids that are not plain names a readable part and a hash of the whole id, so they never collide", () => {
    const a = nameOf("feature/Build #3");
    const b = nameOf("feature-build--3");
    const c = nameOf("Feature/Build #3");
    expect(a).toMatch(/^berth-holder-feature-build--3-[0-9a-f]{12}$/);
    expect(b).toBe("berth-holder-feature-build--3");
    expect(new Set([a, b, c]).size).toBe(3);
    const long = nameOf(`jenkins-${"x".repeat(200)}-7`);
    expect(long).toMatch(/^berth-holder-jenkins-x{32}-[0-9a-f]{12}$/);
    expect(nameOf("../..")).toMatch(/^berth-holder-[0-9a-f]{12}$/);
    for (const n of [a, c, long]) expect(n).toMatch(/^[a-z0-9][a-z0-9_.-]*$/);
  });

  it("refuses an empty id and wrong usage", () => {
    const empty = holder("name", "");
    expect(empty.status).toBe(1);
    expect(empty.stderr).toContain("the build id is empty");
    for (const args of [[], ["start"], ["stop", "a", "b"], ["gc", "x"], ["remove", "a"]]) {
      const r = holder(...args);
      expect(r.status, args.join(" ")).toBe(2);
      expect(r.stderr).toMatch(/^usage: berth-holder start <build id>/);
    }
  });

  it("the holder's forwarding and check scripts are valid POSIX sh (dash, as well as the image's busybox ash)", () => {
    for (const script of [HOLDER_FORWARD_SCRIPT, HOLDER_CHECK_SCRIPT]) {
      for (const shell of [["dash"], ["busybox", "sh"]]) {
        const [cmd, ...pre] = shell as [string, ...string[]];
        const r = spawnSync(cmd, [...pre, "-n", "-c", script], { encoding: "utf8" });
        expect(r.status, `${shell.join(" ")}: ${r.stderr}`).toBe(0);
      }
    }
  });
});
