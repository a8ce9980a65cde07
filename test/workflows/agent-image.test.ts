/**
 * deploy.yml's per-build agent image steps and the script they run, scripts/push-agent-image.sh
 * (with its JavaScript half, scripts/agent-image.mjs): where the steps sit (after `pulumi up`, which
 * creates the registry), when they run (only for a stack whose Docker clouds use the stack's own
 * image), that the three deploy jobs call the script identically, and what it does. The steps'
 * `run` lines are executed as written in the workflow, so the real script runs, with `pulumi`,
 * `docker`, `sudo` and `getent` replaced by stubs that record their arguments and input, fed with
 * the outputs of the real program (under Pulumi's mocks): masking comes first, the password reaches
 * only `docker login`'s stdin, the CA goes to certs.d for the registry alone, and the pushed
 * reference is the one the stack's jenkinsCasc names.
 */
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gitRevision, loadStack } from "../../config/load.ts";
import { PROJECT_ROOT } from "../../config/root.ts";
import type { BerthConfig } from "../../config/types.ts";
import { resolveOutput } from "../../plan/mocks.ts";
import { runConfig } from "../../plan/run.ts";

interface Step {
  name?: string;
  id?: string;
  if?: string;
  run?: string;
  env?: Record<string, string>;
}
interface Job {
  environment?: string | { name: string };
  steps?: Step[];
}
const workflow = parse(readFileSync(join(PROJECT_ROOT, ".github/workflows/deploy.yml"), "utf8")) as {
  jobs: Record<string, Job>;
};
const envName = (job: Job) => (typeof job.environment === "string" ? job.environment : job.environment?.name);
const STACKS = ["testing", "staging", "production"] as const;
const jobOf = (stack: string): Job => {
  const job = Object.values(workflow.jobs).find((j) => envName(j) === stack);
  if (!job) throw new Error(`no deploy job for ${stack}`);
  return job;
};
const steps = (stack: string) => jobOf(stack).steps ?? [];
const upIndex = (stack: string) =>
  steps(stack).findIndex((s) => new RegExp(`pulumi up --yes\\b.*--stack ${stack}\\b`).test(s.run ?? ""));
const detectIndex = (stack: string) => steps(stack).findIndex((s) => s.id === "agent-image");
const pushIndex = (stack: string) =>
  steps(stack).findIndex((s) => (s.run ?? "").includes("scripts/push-agent-image.sh push"));
const detectStep = (stack: string) => steps(stack)[detectIndex(stack)] as Step;
const pushStep = (stack: string) => steps(stack)[pushIndex(stack)] as Step;

const SCRIPT = join(PROJECT_ROOT, "scripts/push-agent-image.sh");
const MODULE = join(PROJECT_ROOT, "scripts/agent-image.mjs");
const shell = readFileSync(SCRIPT, "utf8");
const js = readFileSync(MODULE, "utf8");
/** The body of a bash function `name() { ... }` of the script (up to its closing brace in column 0). */
const shellFunction = (name: string) =>
  new RegExp(`^${name}\\(\\) \\{\\n([\\s\\S]*?)^\\}$`, "m").exec(shell)?.[1] ?? "";
/** The body of a JavaScript function `function name(...) { ... }` of the module. */
const jsFunction = (name: string) =>
  new RegExp(`^function ${name}\\([^)]*\\) \\{\\n([\\s\\S]*?)^\\}$`, "m").exec(js)?.[1] ?? "";

const REV = gitRevision(PROJECT_ROOT) ?? "0123456789abcdef0123456789abcdef01234567";
const PASSWORDS = { jenkins: "pw-jenkins-Zq81xK3v", developer: "pw-developer-Lm20pR7s" };
const SECRET_ENV = ["PULUMI_ACCESS_TOKEN", "PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE"];

describe("deploy.yml: where the agent image steps are", () => {
  it.each(STACKS)("%s: detect, then build and push, right after pulumi up", (stack) => {
    expect(upIndex(stack)).toBeGreaterThanOrEqual(0);
    expect(detectIndex(stack)).toBe(upIndex(stack) + 1);
    expect(pushIndex(stack)).toBe(upIndex(stack) + 2);
    expect(detectStep(stack).env?.STACK).toBe(stack);
    expect(pushStep(stack).env?.STACK).toBe(stack);
    expect(pushStep(stack).if).toBe("steps.agent-image.outputs.image != ''");
    expect(pushStep(stack).env?.IMAGE).toBe("${{ steps.agent-image.outputs.image }}");
    for (const s of [detectStep(stack), pushStep(stack)])
      for (const name of SECRET_ENV)
        expect(s.env?.[name], `${stack}: ${name}`).toBe(`\${{ secrets.${name} }}`);
  });

  it("the three jobs call the one script identically; only STACK differs", () => {
    for (const stack of STACKS) {
      expect(detectStep(stack).run?.trim()).toBe('scripts/push-agent-image.sh detect "$STACK"');
      expect(pushStep(stack).run?.trim()).toBe('scripts/push-agent-image.sh push "$STACK" "$IMAGE"');
      expect(detectStep(stack).name).toBe(`Per-build agent image of ${stack}`);
      expect(pushStep(stack).name).toBe(`Build and push the per-build agent image to the ${stack} registry`);
      const secrets = Object.fromEntries(SECRET_ENV.map((n) => [n, `\${{ secrets.${n} }}`]));
      expect(detectStep(stack).env).toEqual({ STACK: stack, ...secrets });
      expect(pushStep(stack).env).toEqual({
        STACK: stack,
        IMAGE: "${{ steps.agent-image.outputs.image }}",
        ...secrets,
      });
    }
    // The workflow runs it directly, as a checked-in executable.
    expect(statSync(SCRIPT).mode & 0o111).toBe(0o111);
    expect(shell.startsWith("#!/usr/bin/env bash\n")).toBe(true);
  });

  it("masks before logging in, reads the password on stdin, and reveals only registryPasswords", () => {
    const push = shellFunction("push");
    const login = jsFunction("login");
    expect(push).not.toBe("");
    expect(login).not.toBe("");
    // The module masks every password before it reads or writes anything else...
    expect(login.indexOf("::add-mask::")).toBeGreaterThan(0);
    expect(login.indexOf("::add-mask::")).toBeLessThan(login.indexOf("outputs.json"));
    expect(login.indexOf("::add-mask::")).toBeLessThan(login.indexOf("writeFileSync"));
    // ...and the script runs it before logging in.
    expect(push.indexOf('agent-image.mjs" login')).toBeGreaterThan(0);
    expect(push.indexOf('agent-image.mjs" login')).toBeLessThan(push.indexOf("docker login --username"));
    expect(push).toMatch(
      /docker login --username "\$\(<"\$work\/user"\)" --password-stdin "\$registry" <"\$work\/password"/,
    );
    expect(shell).not.toMatch(/--password[ =](?!stdin)/);
    expect(login).toMatch(/writeFileSync\(`\$\{dir\}\/password`, password, \{ mode: 0o600 \}\)/);
    // --show-secrets only ever for the one output it needs, and never in detect.
    const revealing = shell.split("\n").filter((l) => l.includes("--show-secrets"));
    expect(revealing).toHaveLength(1);
    expect(revealing[0]).toMatch(
      /pulumi stack output --json --show-secrets --stack "\$stack" registryPasswords \|$/,
    );
    expect(shellFunction("detect")).not.toBe("");
    expect(shellFunction("detect")).not.toContain("--show-secrets");
    // Nothing prints a password variable: the only console.log of one is its mask.
    expect(shell).not.toMatch(/(echo|printf)[^\n]*(password|\$\{?p\b)/i);
    for (const line of js.split("\n").filter((l) => /console\.(log|error)|stdout\.write/.test(l)))
      if (/password|\$\{p\}/i.test(line)) expect(line).toContain("::add-mask::${p}");
    expect(push).toContain("trap 'rm -rf \"$work\"' EXIT");
  });
});

// --- the steps' scripts, run --------------------------------------------------------------------

/** Stub commands on PATH; each appends its argv (and what it read) to files under `log`. */
function makeStubs(dir: string, opts: { dnsKnowsRegistry: boolean }): { bin: string; log: string } {
  const bin = join(dir, "bin");
  const log = join(dir, "log");
  mkdirSync(bin, { recursive: true });
  mkdirSync(log, { recursive: true });
  const stub = (name: string, body: string) => {
    writeFileSync(
      join(bin, name),
      `#!/usr/bin/env bash\nset -euo pipefail\nLOG=${JSON.stringify(log)}\n${body}\n`,
    );
    chmodSync(join(bin, name), 0o755);
  };
  stub(
    "pulumi",
    `printf '%s\\n' "$*" >>"$LOG/pulumi.args"
case " $* " in
  *" --show-secrets "*" registryPasswords "*) cat "$LOG/../passwords.json" ;;
  *" --show-secrets "*) echo "stub: --show-secrets for everything" >&2; exit 3 ;;
  *) cat "$LOG/../outputs.json" ;;
esac`,
  );
  stub(
    "docker",
    `printf '%s DOCKER_CONFIG=%s\\n' "$*" "\${DOCKER_CONFIG:-}" >>"$LOG/docker.args"
case $1 in
  login) stat -L -c %a /dev/stdin >"$LOG/login.stdin.mode"; cat >"$LOG/login.stdin"; echo "Login Succeeded" ;;
  build) echo "Successfully built 0123456789ab" ;;
  push) echo "\${2##*:}: digest: sha256:$(printf '%064d' 0) size: 1234" ;;
esac`,
  );
  stub(
    "sudo",
    `printf '%s\\n' "$*" >>"$LOG/sudo.args"
case $1 in
  install) cat "\${@: -2:1}" >"$LOG/installed" ;;
  tee) cat >>"$LOG/tee" ;;
  *) echo "stub sudo: unexpected $1" >&2; exit 3 ;;
esac`,
  );
  stub("getent", opts.dnsKnowsRegistry ? `echo "198.51.100.7 $2"` : "exit 2");
  return { bin, log };
}

interface StepRun {
  status: number | null;
  stdout: string;
  stderr: string;
  output: string;
  log: string;
  runnerTemp: string;
}

/** Runs a step's `run` script as Actions does (bash -e, pipefail) from the repository root. */
function runStep(
  step: Step,
  env: Record<string, string>,
  files: { outputs: unknown; passwords?: unknown },
  opts: { dnsKnowsRegistry?: boolean } = {},
): StepRun {
  const dir = mkdtempSync(join(tmpdir(), "berth-wf-"));
  const { bin, log } = makeStubs(dir, { dnsKnowsRegistry: opts.dnsKnowsRegistry ?? false });
  writeFileSync(join(dir, "outputs.json"), JSON.stringify(files.outputs));
  writeFileSync(join(dir, "passwords.json"), JSON.stringify(files.passwords ?? {}));
  const runnerTemp = join(dir, "runner-temp");
  mkdirSync(runnerTemp);
  const output = join(dir, "github-output");
  writeFileSync(output, "");
  const script = join(dir, "step.sh");
  writeFileSync(script, step.run ?? "");
  const base = { ...process.env };
  delete base.BERTH_AGENT_IMAGE_TAG;
  delete base.DOCKER_CONFIG;
  const r = spawnSync("bash", ["--noprofile", "--norc", "-eo", "pipefail", script], {
    cwd: PROJECT_ROOT,
    encoding: "utf8",
    timeout: 60_000,
    env: {
      ...base,
      PATH: `${bin}:${process.env.PATH ?? ""}`,
      RUNNER_TEMP: runnerTemp,
      GITHUB_OUTPUT: output,
      ...env,
    },
  });
  return {
    status: r.status,
    stdout: r.stdout,
    stderr: r.stderr,
    output: readFileSync(output, "utf8"),
    log,
    runnerTemp,
  };
}
const read = (log: string, file: string) =>
  existsSync(join(log, file)) ? readFileSync(join(log, file), "utf8") : "";

/** What `pulumi stack output --json` shows (secrets as "[secret]"), from the program under mocks. */
async function stackOutputs(config: BerthConfig): Promise<Record<string, unknown>> {
  const run = await runConfig(config);
  const o = run.outputs;
  const hosts = await Promise.all(
    o.hosts.map(async (h) => ({
      name: h.name,
      privateIp: h.privateIp,
      floatingIp: (await resolveOutput(h.floatingIp)).value,
      ssh: (await resolveOutput(h.ssh)).value,
    })),
  );
  return {
    environment: o.environment,
    hosts,
    registryUrl: o.registryUrl,
    registryCaPem: (await resolveOutput(o.registryCaPem)).value,
    registryUsers: o.registryUsers,
    registryPasswords: "[secret]",
    dockerTlsClientKeyPem: "[secret]",
    jenkinsCasc: (await resolveOutput(o.jenkinsCasc)).value,
  };
}

describe("deploy.yml: the agent image steps, run", () => {
  const outputs: Record<string, Record<string, unknown>> = {};
  const scratch: string[] = [];
  const track = (r: StepRun) => {
    scratch.push(join(r.log, ".."));
    return r;
  };

  beforeAll(async () => {
    // One mock run at a time: the mocks are process-wide.
    outputs.staging = await stackOutputs(loadStack(PROJECT_ROOT, "staging", { agentImageTag: REV }));
    outputs.testing = await stackOutputs(loadStack(PROJECT_ROOT, "testing", { agentImageTag: REV }));
    const pinned = loadStack(PROJECT_ROOT, "staging", { agentImageTag: REV });
    pinned.jenkins.perBuild.image = `docker.io/example/agent:1@sha256:${"ab".repeat(32)}`;
    pinned.jenkins.perBuild.imageSource = "pinned";
    outputs.pinned = await stackOutputs(pinned);
  }, 120_000);
  afterAll(() => {
    for (const d of scratch) rmSync(d, { recursive: true, force: true });
  });

  const staged = () => outputs.staging as Record<string, unknown>;
  const image = `registry.staging.ci.example.com/berth/jenkins-agent:${REV}`;

  it("staging: the detect step outputs the image the clouds pull", () => {
    const r = track(runStep(detectStep("staging"), { STACK: "staging" }, { outputs: staged() }));
    expect(r.status, r.stderr).toBe(0);
    expect(r.output).toBe(`image=${image}\n`);
    expect(read(r.log, "pulumi.args")).toBe("stack output --json --stack staging\n");
  });

  it("testing (per-build agents off) and a pinned image from elsewhere: no image, so no push", () => {
    for (const [name, stack] of [
      ["testing", "testing"],
      ["pinned", "staging"],
    ] as const) {
      const r = track(runStep(detectStep(stack), { STACK: stack }, { outputs: outputs[name] }));
      expect(r.status, `${name}: ${r.stderr}`).toBe(0);
      expect(r.output, name).toBe("image=\n");
      expect(r.stdout, name).toMatch(/^::notice::.*no per-build agent image to push/m);
    }
  });

  it("staging: masks every registry password first, logs in on stdin, trusts the CA for that registry, pushes the CASC's image", () => {
    const r = track(
      runStep(
        pushStep("staging"),
        { STACK: "staging", IMAGE: image },
        { outputs: staged(), passwords: PASSWORDS },
      ),
    );
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    const lines = r.stdout.trim().split("\n");
    // The masks come before anything else the step prints.
    expect(lines.slice(0, 2).sort()).toEqual(
      Object.values(PASSWORDS)
        .map((p) => `::add-mask::${p}`)
        .sort(),
    );
    expect(lines.at(-1)).toBe(`Pushed ${image}`);
    // Secrets appear nowhere else: not in any output, nor in any command's arguments.
    const everywhere = [
      lines.slice(2).join("\n"),
      r.stderr,
      read(r.log, "docker.args"),
      read(r.log, "sudo.args"),
      read(r.log, "pulumi.args"),
      read(r.log, "tee"),
    ].join("\n");
    for (const p of Object.values(PASSWORDS)) expect(everywhere).not.toContain(p);
    expect(read(r.log, "login.stdin")).toBe(PASSWORDS.jenkins);
    // Read from a file only its owner can read.
    expect(read(r.log, "login.stdin.mode").trim()).toBe("600");

    // Only registryPasswords is read with its secrets.
    expect(read(r.log, "pulumi.args").trim().split("\n")).toEqual([
      "stack output --json --stack staging",
      "stack output --json --show-secrets --stack staging registryPasswords",
    ]);
    // Login, build, push: as the first registry user, with the revision label, in a DOCKER_CONFIG of
    // the step's own that is gone afterwards.
    const docker = read(r.log, "docker.args").trim().split("\n");
    const config = docker[0]?.match(/DOCKER_CONFIG=(\S+)$/)?.[1] ?? "";
    expect(config.startsWith(`${r.runnerTemp}/agent-image.`)).toBe(true);
    expect(docker).toEqual([
      `login --username jenkins --password-stdin registry.staging.ci.example.com DOCKER_CONFIG=${config}`,
      `build --label org.opencontainers.image.revision=${REV} -t ${image} ${join(PROJECT_ROOT, "images/jenkins-agent")} DOCKER_CONFIG=${config}`,
      `push ${image} DOCKER_CONFIG=${config}`,
    ]);
    expect(readdirSync(r.runnerTemp)).toEqual([]);
    // The stack's registry CA, trusted by the daemon for this registry only.
    const sudo = read(r.log, "sudo.args").trim().split("\n");
    expect(sudo[0]).toMatch(
      /^install -D -m 0644 \S+\/ca\.crt \/etc\/docker\/certs\.d\/registry\.staging\.ci\.example\.com\/ca\.crt$/,
    );
    expect(read(r.log, "installed")).toBe(staged().registryCaPem);
    expect(read(r.log, "installed")).toMatch(/^-----BEGIN CERTIFICATE-----/);
    // The name is pinned to the first host's floating IP, as the hosts' /etc/hosts pins it.
    const first = (staged().hosts as { floatingIp: string }[])[0]?.floatingIp;
    expect(sudo[1]).toBe("tee -a /etc/hosts");
    expect(read(r.log, "tee")).toBe(`${String(first)} registry.staging.ci.example.com\n`);
  });

  it("leaves /etc/hosts alone when DNS knows the registry", () => {
    const r = track(
      runStep(
        pushStep("staging"),
        { STACK: "staging", IMAGE: image },
        { outputs: staged(), passwords: PASSWORDS },
        { dnsKnowsRegistry: true },
      ),
    );
    expect(r.status, r.stderr).toBe(0);
    expect(read(r.log, "sudo.args")).not.toContain("tee");
    expect(read(r.log, "tee")).toBe("");
  });

  it("refuses to push when the CASC names another revision than this checkout, before reading any secret", () => {
    const other = image.replace(REV, "f".repeat(40));
    const r = track(
      runStep(
        pushStep("staging"),
        { STACK: "staging", IMAGE: other },
        { outputs: staged(), passwords: PASSWORDS },
      ),
    );
    expect(r.status).not.toBe(0);
    expect(r.stdout).toContain(
      `::error::jenkinsCasc names ${other}, but this checkout builds the tag ${REV}`,
    );
    expect(read(r.log, "pulumi.args")).toBe("");
    expect(read(r.log, "docker.args")).toBe("");
  });

  it("fails without a registry password, printing none of the outputs", () => {
    const r = track(
      runStep(
        pushStep("staging"),
        { STACK: "staging", IMAGE: image },
        { outputs: staged(), passwords: { developer: PASSWORDS.developer } },
      ),
    );
    expect(r.status).not.toBe(0);
    expect(r.stdout).toContain("::error::the stack outputs have no registry user with a password");
    expect(r.stdout.split("\n")[0]).toBe(`::add-mask::${PASSWORDS.developer}`);
    expect(r.stderr).not.toContain(PASSWORDS.developer);
    expect(read(r.log, "docker.args")).toBe("");
  });

  it("fails when what it pushed is not the image the CASC names, and still removes its scratch files", () => {
    // Same registry and tag, another repository: build-and-push.sh pushes berth/jenkins-agent.
    const other = `registry.staging.ci.example.com/other/agent:${REV}`;
    const r = track(
      runStep(
        pushStep("staging"),
        { STACK: "staging", IMAGE: other },
        { outputs: staged(), passwords: PASSWORDS },
      ),
    );
    expect(r.status).not.toBe(0);
    expect(r.stdout).toContain(`::error::pushed ${image}, but jenkinsCasc names ${other}`);
    expect(r.stdout).not.toContain("Pushed");
    expect(read(r.log, "docker.args")).toContain(`push ${image} `);
    expect(readdirSync(r.runnerTemp)).toEqual([]);
  });

  it("by hand: detect prints the image when there is no GITHUB_OUTPUT; bad usage exits 2 and runs nothing", () => {
    const r = track(
      runStep(
        { run: "scripts/push-agent-image.sh detect staging" },
        { GITHUB_OUTPUT: "" },
        { outputs: staged() },
      ),
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(`image=${image}\n`);
    expect(r.output).toBe("");
    for (const run of [
      "scripts/push-agent-image.sh",
      "scripts/push-agent-image.sh push staging",
      `scripts/push-agent-image.sh push "" ${image}`,
      "scripts/push-agent-image.sh detect",
      "scripts/push-agent-image.sh deploy staging",
    ]) {
      const bad = track(runStep({ run }, {}, { outputs: staged(), passwords: PASSWORDS }));
      expect(bad.status, run).toBe(2);
      expect(bad.stderr, run).toMatch(
        /^usage: .*push-agent-image\.sh detect <stack> \| push <stack> <image>$/m,
      );
      expect(read(bad.log, "pulumi.args"), run).toBe("");
      expect(read(bad.log, "docker.args"), run).toBe("");
    }
  });
});
