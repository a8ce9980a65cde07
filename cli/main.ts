/**
 * `berth` — offline companion of the Pulumi program.
 *
 *   berth validate <stack>            check stacks/Pulumi.<stack>.yaml (pr-<N>: derived from testing)
 *   berth plan <stack> [--out DIR] [--against REF]
 *                                     plan.md, plan.json and hosts/*.ign for reviewers (default out/plan/<stack>);
 *                                     with --against, a Markdown comparison with the plan at REF (for PR comments)
 *   berth render <stack> --out DIR    write DIR/hosts/<host>.ign, each host's Ignition (run under mocks)
 *   berth jenkins-casc <stack>        print the JCasC Docker clouds for per-build agents (run under mocks)
 *   berth images check <stack> [--registry HOST[:PORT]] [--insecure]
 *                                     check each image pin against its registry (skopeo)
 *   berth dev <stack> [--out DIR] [--production-like]
 *                                     a Compose file with the stack's services, for a developer's machine
 *   berth monitoring <stack> [--out DIR]
 *                                     Prometheus scrape configuration, targets and alert rules for the stack
 *   berth drift <stack> [--json] [--prune] ...
 *                                     compare each host's dockerd with the program; remove orphans
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { ConfigError } from "../config/errors.ts";
import { loadCheckedStack } from "../stack/validate.ts";
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
  berth images check <stack> [--registry <host[:port]>] [--insecure]
                                     check that every pinned image still exists and whether its tag has
                                     moved (skopeo); exit 0 all current, 3 outdated or missing, 1 lookup failed.
                                     --registry looks every repository up in that registry (a mirror);
                                     --insecure skips TLS verification (a plain-HTTP mirror)
  berth dev <stack> [--out <dir>] [--production-like]
                                     write <dir>/docker-compose.yml (default out/dev/<stack>) with the stack's
                                     minimal set of services as its CI hosts run them (same pinned images,
                                     ports, environment, health checks), credentials in <dir>/.env (0600);
                                     --production-like adds the production-like set and dnsmasq
  berth monitoring <stack> [--out <dir>]
                                     write <dir>/prometheus.yml, <dir>/targets/*.json and <dir>/rules.yml
                                     (default out/monitoring/<stack>): scrape jobs for node_exporter, dockerd
                                     and the registry on the hosts' private addresses, and Berth's alert rules
  berth drift <stack> [--json] [--docker-host <host>=<url>]... [--tls] [--jenkins-id <id>]
              [--jenkins-nodes <file>] [--prune [--prune-volumes] [--grace-minutes <n>]] [--now <iso>]
                                     compare what runs on each host's dockerd with what the program declares:
                                     orphans (labelled org.berth.stack=<stack>, not declared; per-build
                                     containers of this controller whose node is gone), missing, stopped and
                                     differing containers; exit 0 no drift, 7 drift, 1 error.
                                     Hosts are reached as ssh://core@<floating ip> (stack outputs), or over
                                     mutual TLS with --tls; --docker-host sets one host's endpoint
                                     (unix:///path, tcp://host:port, ssh://user@host). --prune removes orphans
                                     older than --grace-minutes (default 60; volumes only with --prune-volumes)
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
        const cfg = loadCheckedStack(root, stack);
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
      case "images": {
        const { positionals, values } = parseArgs({
          args: rest,
          allowPositionals: true,
          options: { registry: { type: "string" }, insecure: { type: "boolean" } },
        });
        const [sub, stack] = positionals;
        if (sub !== "check" || !stack || positionals.length > 2) return usage(io);
        const { imagesCheck, REGISTRY_ARG } = await import("./images.ts");
        if (values.registry !== undefined && !REGISTRY_ARG.test(values.registry)) {
          io.err(
            `--registry must be host or host:port, such as mirror.example.com:5000 (got ${JSON.stringify(values.registry)})`,
          );
          return 2;
        }
        const result = await imagesCheck(root, stack, {
          ...(values.registry !== undefined ? { registry: values.registry } : {}),
          tlsVerify: !values.insecure,
        });
        io.out(result.text);
        return result.code;
      }
      case "dev": {
        const { positionals, values } = parseArgs({
          args: rest,
          allowPositionals: true,
          options: { out: { type: "string" }, "production-like": { type: "boolean" } },
        });
        const stack = positionals[0];
        if (!stack || positionals.length > 1) return usage(io);
        const { writeDevEnvironment } = await import("./dev.ts");
        const files = await writeDevEnvironment(root, stack, values.out ?? join(root, "out", "dev", stack), {
          productionLike: values["production-like"] === true,
        });
        for (const f of files) io.out(`wrote ${f}`);
        return 0;
      }
      case "monitoring": {
        const { positionals, values } = parseArgs({
          args: rest,
          allowPositionals: true,
          options: { out: { type: "string" } },
        });
        const stack = positionals[0];
        if (!stack || positionals.length > 1) return usage(io);
        const { writeMonitoring } = await import("./monitoring.ts");
        for (const f of writeMonitoring(root, stack, values.out ?? join(root, "out", "monitoring", stack)))
          io.out(`wrote ${f}`);
        return 0;
      }
      case "drift": {
        const { positionals, values } = parseArgs({
          args: rest,
          allowPositionals: true,
          options: {
            json: { type: "boolean" },
            "docker-host": { type: "string", multiple: true },
            tls: { type: "boolean" },
            "jenkins-id": { type: "string" },
            "jenkins-nodes": { type: "string" },
            prune: { type: "boolean" },
            "prune-volumes": { type: "boolean" },
            "grace-minutes": { type: "string" },
            now: { type: "string" },
          },
        });
        const stack = positionals[0];
        if (!stack || positionals.length > 1) return usage(io);
        const { driftCommand } = await import("./drift-command.ts");
        return await driftCommand(root, stack, values, io);
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
