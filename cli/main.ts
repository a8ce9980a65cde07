/**
 * `berth` — offline companion of the Pulumi program.
 *
 *   berth validate <stack>            check stacks/Pulumi.<stack>.yaml (pr-<N>: derived from testing)
 */
import { parseArgs } from "node:util";
import { ConfigError } from "../config/errors.ts";
import { loadStack } from "../config/load.ts";
import { PROJECT_ROOT } from "../config/root.ts";
import { summarize } from "./summary.ts";

const USAGE = `Usage:
  berth validate <stack>             validate a stack's configuration (testing, staging, production, pr-<N>)
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
      case "help":
      case "--help":
      case "-h":
        io.out(USAGE);
        return 0;
      default:
        return usage(io);
    }
  } catch (e) {
    if (e instanceof ConfigError) {
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
