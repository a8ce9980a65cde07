/** The pids-limit renderer: the script parses and passes shellcheck, the unit carries the default. */
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";

import { PIDS_LIMIT_LABEL as CONFIG_LABEL } from "../../config/limits.ts";
import {
  PIDS_LIMIT_LABEL,
  PIDS_LIMIT_SCRIPT,
  renderPidsLimitScript,
  renderPidsLimitUnit,
} from "../../renderers/pids-limit.ts";
import { requireTools } from "../support/tools.ts";

const shellcheck = requireTools("shellcheck", [{ tool: "shellcheck", debianPackage: "shellcheck" }]);

describe("berth-pids-limit script", () => {
  const text = renderPidsLimitScript();

  it("is bash that bash -n accepts", () => {
    expect(text.startsWith("#!/bin/bash\n")).toBe(true);
    const r = spawnSync("bash", ["-n"], { input: text, encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it.skipIf(shellcheck.skip)("shellcheck finds nothing", () => {
    const r = spawnSync("shellcheck", ["-"], { input: text, encoding: "utf8" });
    expect(r.stdout).toBe("");
    expect(r.status).toBe(0);
  });

  it("reads the label the program writes, and follows create and start events from before its sweep", () => {
    expect(PIDS_LIMIT_LABEL).toBe(CONFIG_LABEL);
    expect(text).toContain(`readonly LABEL=${PIDS_LIMIT_LABEL}\n`);
    expect(text).toContain("--filter event=create");
    expect(text).toContain("--filter event=start");
    // The events are read from before the sweep, so nothing created meanwhile is missed.
    expect(text.indexOf("since=$(")).toBeLessThan(text.indexOf("docker ps --all"));
    expect(text.indexOf("docker ps --all")).toBeLessThan(text.indexOf('docker events --since "$since"'));
  });

  it("refuses to run without a valid default", () => {
    for (const bad of ["", "0", "-1", "12abc"]) {
      const r = spawnSync("bash", ["-c", text], {
        encoding: "utf8",
        env: { PATH: "/usr/bin:/bin", BERTH_PIDS_DEFAULT: bad },
      });
      expect(r.status, bad).toBe(2);
      expect(r.stderr).toContain("BERTH_PIDS_DEFAULT must be a positive integer");
    }
  });
});

describe("berth-pids-limit unit", () => {
  it("starts the script after dockerd with the default, and is restarted when it exits", () => {
    const unit = renderPidsLimitUnit("/opt/bin", 3124);
    expect(unit).toContain("After=docker.service\n");
    expect(unit).toContain("Environment=BERTH_PIDS_DEFAULT=3124\n");
    expect(unit).toContain(`ExecStart=/opt/bin/${PIDS_LIMIT_SCRIPT}\n`);
    expect(unit).toContain("Restart=always\n");
    expect(unit).toContain("WantedBy=multi-user.target\n");
  });

  it("refuses a default that is not a positive integer", () => {
    expect(() => renderPidsLimitUnit("/opt/bin", 0)).toThrow(/not a positive integer/);
    expect(() => renderPidsLimitUnit("/opt/bin", 1.5)).toThrow(/not a positive integer/);
  });
});
