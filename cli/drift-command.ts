/** `berth drift` argument checks and output (cli/drift.ts does the work). */
import { readFileSync } from "node:fs";
import {
  DEFAULT_GRACE_MINUTES,
  driftStack,
  DriftUsageError,
  EXIT_USAGE,
  renderDrift,
  type DriftCommandOptions,
} from "./drift.ts";
import type { Io } from "./main.ts";

export interface DriftArgs {
  json?: boolean;
  "docker-host"?: string[];
  tls?: boolean;
  "jenkins-id"?: string;
  "jenkins-nodes"?: string;
  prune?: boolean;
  "prune-volumes"?: boolean;
  "grace-minutes"?: string;
  now?: string;
}

/** Checks every argument (one message naming each bad one), runs the comparison, prints it. */
export async function driftCommand(
  root: string,
  stack: string,
  args: DriftArgs,
  io: Io,
  extra: Pick<DriftCommandOptions, "stackOutputs"> = {},
): Promise<number> {
  const problems: string[] = [];
  const dockerHosts: Record<string, string> = {};
  for (const spec of args["docker-host"] ?? []) {
    const m = /^([^=]+)=(.+)$/.exec(spec);
    if (!m)
      problems.push(
        `--docker-host ${JSON.stringify(spec)}: use <host>=<url>, e.g. testing-ci-1=unix:///run/docker.sock`,
      );
    else if ((m[1] as string) in dockerHosts) problems.push(`--docker-host: ${m[1] as string} given twice`);
    else dockerHosts[m[1] as string] = m[2] as string;
  }
  let graceSeconds = DEFAULT_GRACE_MINUTES * 60;
  if (args["grace-minutes"] !== undefined) {
    if (!/^\d+$/.test(args["grace-minutes"]))
      problems.push(
        `--grace-minutes must be a whole number of minutes (got ${JSON.stringify(args["grace-minutes"])})`,
      );
    else graceSeconds = Number(args["grace-minutes"]) * 60;
  }
  let now: Date | undefined;
  if (args.now !== undefined) {
    now = new Date(args.now);
    if (Number.isNaN(now.getTime()))
      problems.push(`--now must be an ISO 8601 time (got ${JSON.stringify(args.now)})`);
  }
  if (args["prune-volumes"] && !args.prune) problems.push("--prune-volumes only goes with --prune");
  const jenkinsId = args["jenkins-id"] ?? process.env.BERTH_JENKINS_ID;
  if (args["jenkins-nodes"] !== undefined && jenkinsId === undefined)
    problems.push(
      "--jenkins-nodes needs --jenkins-id (or BERTH_JENKINS_ID): only this controller's containers are judged",
    );
  let jenkinsNodes: Set<string> | undefined;
  if (args["jenkins-nodes"] !== undefined) {
    try {
      jenkinsNodes = new Set(
        readFileSync(args["jenkins-nodes"], "utf8")
          .split("\n")
          .map((l) => l.trim())
          .filter((l) => l !== "" && !l.startsWith("#")),
      );
    } catch (e) {
      problems.push(
        `--jenkins-nodes ${args["jenkins-nodes"]}: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
  }
  if (problems.length > 0) {
    io.err(`berth drift: ${problems.join("\n  ")}`);
    return EXIT_USAGE;
  }
  try {
    const report = await driftStack(root, stack, {
      dockerHosts,
      tls: args.tls === true,
      ...(jenkinsId !== undefined ? { jenkinsId } : {}),
      ...(jenkinsNodes ? { jenkinsNodes } : {}),
      prune: args.prune === true,
      pruneVolumes: args["prune-volumes"] === true,
      graceSeconds,
      ...(now ? { now } : {}),
      ...extra,
    });
    io.out(args.json ? JSON.stringify(report, null, 2) : renderDrift(report));
    return report.exitCode;
  } catch (e) {
    if (e instanceof DriftUsageError) {
      io.err(`berth drift: ${e.message}`);
      return EXIT_USAGE;
    }
    throw e;
  }
}
