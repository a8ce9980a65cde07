/**
 * `berth` — offline companion of the Pulumi program.
 *
 *   berth validate <stack>            check stacks/Pulumi.<stack>.yaml (pr-<N>: derived from testing)
 *   berth plan <stack> [--out DIR] [--against REF]
 *                                     plan.md, plan.json and hosts/*.ign for reviewers (default out/plan/<stack>);
 *                                     with --against, a Markdown comparison with the plan at REF (for PR comments)
 *   berth render <stack> --out DIR    write DIR/hosts/<host>.ign, each host's Ignition (run under mocks)
 *   berth jenkins-casc <stack>        print the JCasC Docker clouds for per-build agents (run under mocks)
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { ConfigError } from "../config/errors.ts";
import { loadStack } from "../config/load.ts";
import { PROJECT_ROOT } from "../config/root.ts";
import { summarize } from "./summary.ts";
import { checkOutDir, OutDirError } from "./out.ts";

const USAGE = `Usage:
  berth validate <stack>             validate a stack's configuration (testing, staging, production, pr-<N>)
  berth plan <stack> [--out <dir>] [--against <git ref>]
                                     write plan.md, plan.json and hosts/*.ign (default out/plan/<stack>);
                                     with --against, print what changes compared with <git ref>, and which
                                     servers will be replaced because their Ignition changed
  berth render <stack> --out <dir>   write each host's Ignition config to <dir>/hosts/<host>.ign
  berth jenkins-casc <stack>         print the Jenkins Configuration-as-Code Docker clouds (per-build agents,
                                     one per host, over dockerd's mutual TLS); addresses are placeholders
                                     offline, \`pulumi stack output jenkinsCasc\` has the real ones
  berth janitor [--apply] [--now <iso>]
                                     destroy expired pr-<N> preview stacks (dry run unless --apply)
  berth help                         show this text`;

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

const stdio: Io = { out: (s) => process.stdout.write(s + "\n"), err: (s) => process.stderr.write(s + "\n") };

export async function main(argv: string[], io: Io = stdio, root: string = PROJECT_ROOT): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case "validate": {
        const { positionals } = parseArgs({ args: rest, allowPositionals: true, options: {} });
        const stack = positionals[0];
        if (!stack || positionals.length > 1) return usage(io);
        const cfg = loadStack(root, stack);
        io.out(summarize(cfg));
        return 0;
      }
      case "render": {
        const { positionals, values } = parseArgs({
          args: rest,
          allowPositionals: true,
          options: { out: { type: "string" } },
        });
        const stack = positionals[0];
        if (!stack || positionals.length > 1 || values.out === undefined) return usage(io);
        checkOutDir(values.out);
        const { renderStack } = await import("./render.ts");
        const files = await renderStack(root, stack, values.out);
        for (const f of files) io.out(`wrote ${f}`);
        return 0;
      }
      case "plan": {
        const { positionals, values } = parseArgs({
          args: rest,
          allowPositionals: true,
          options: { out: { type: "string" }, against: { type: "string" } },
        });
        const stack = positionals[0];
        if (!stack || positionals.length > 1) return usage(io);
        const out = values.out ?? join(root, "out", "plan", stack);
        checkOutDir(out);
        const { planStack } = await import("./plan.ts");
        const result = await planStack(root, stack, out, values.against);
        if (result.diffMarkdown !== undefined) io.out(result.diffMarkdown);
        else for (const f of result.files) io.out(`wrote ${f}`);
        return 0;
      }
      case "jenkins-casc": {
        const { positionals } = parseArgs({ args: rest, allowPositionals: true, options: {} });
        const stack = positionals[0];
        if (!stack || positionals.length > 1) return usage(io);
        const { jenkinsCascText } = await import("./casc.ts");
        io.out((await jenkinsCascText(root, stack)).trimEnd());
        return 0;
      }
      case "janitor": {
        const { runJanitor } = await import("../janitor/run.ts");
        return await runJanitor(rest, io, { root });
      }
      case "help":
      case "--help":
      case "-h":
        io.out(USAGE);
        return 0;
      default:
        return usage(io);
    }
  } catch (e) {
    if (
      e instanceof ConfigError ||
      e instanceof OutDirError ||
      (e instanceof Error && e.name === "AgainstError")
    ) {
      io.err(e.message);
      return 1;
    }
    if (e instanceof Error && (e as NodeJS.ErrnoException).code?.startsWith("ERR_PARSE_ARGS")) {
      io.err(`${e.message}\n${USAGE}`);
      return 2;
    }
    throw e;
  }
}

function usage(io: Io): number {
  io.err(USAGE);
  return 2;
}
