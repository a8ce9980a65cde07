// The JavaScript half of scripts/push-agent-image.sh: reads a stack's Pulumi outputs. Plain Node and
// the project's `yaml` package (npm ci first).
//
//   node scripts/agent-image.mjs image <stack>  <  pulumi stack output --json
//     The stack's own per-build agent image, as the step output `image` (appended to $GITHUB_OUTPUT;
//     printed when it is unset): the one image jenkinsCasc's Docker clouds pull when it is
//     <registry>/berth/jenkins-agent:<tag>, else nothing (per-build agents off, or an image from
//     elsewhere), with a notice saying which.
//
//   node scripts/agent-image.mjs login <dir>  <  pulumi stack output --json --show-secrets registryPasswords
//     Masks every registry password (a GitHub Actions `::add-mask::` line each) before anything else,
//     then writes, from <dir>/outputs.json (`pulumi stack output --json`, secrets hidden), the files
//     push-agent-image.sh reads: user (the first registry user), password (its password, mode 0600),
//     ca.crt (registryCaPem) and address (the first host's floating IP, where the registry runs).
//
// Errors are GitHub Actions `::error::` lines on stdout, exit status 1; bad usage exits 2.
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { parse } from "yaml";

/** The repository of the image config/load.ts resolves `perBuild.image: registry` to. */
const REPOSITORY = "berth/jenkins-agent";

function fail(message) {
  console.log(`::error::${message}`);
  process.exit(1);
}

const stdin = () => readFileSync(0, "utf8");

function image(stack) {
  const out = JSON.parse(stdin());
  const registry = String(out.registryUrl ?? "").replace(/^https:\/\//, "");
  const casc = parse(String(out.jenkinsCasc ?? "")) ?? {};
  const images = new Set(
    (casc.jenkins?.clouds ?? []).flatMap((c) =>
      (c.docker?.templates ?? []).map((t) => t.dockerTemplateBase?.image),
    ),
  );
  const own = [...images].filter(
    (i) => registry !== "" && typeof i === "string" && i.startsWith(`${registry}/${REPOSITORY}:`),
  );
  if (own.length > 1) fail(`jenkinsCasc names more than one agent image: ${own.join(" ")}`);
  if (own.length === 0)
    console.log(
      `::notice::${stack}: no per-build agent image to push (${images.size === 0 ? "per-build agents are off" : "the clouds use an image from elsewhere"})`,
    );
  const line = `image=${own[0] ?? ""}\n`;
  if (process.env.GITHUB_OUTPUT) appendFileSync(process.env.GITHUB_OUTPUT, line);
  else process.stdout.write(line);
}

function login(dir) {
  let passwords;
  try {
    passwords = JSON.parse(stdin());
  } catch {
    fail("registryPasswords is not JSON");
  }
  // First, before anything else is read or printed: the log shows none of them from here on.
  for (const p of Object.values(passwords ?? {}))
    if (typeof p === "string" && p !== "") console.log(`::add-mask::${p}`);
  const out = JSON.parse(readFileSync(`${dir}/outputs.json`, "utf8"));
  const user = (out.registryUsers ?? [])[0];
  const password = passwords?.[user];
  if (typeof user !== "string" || typeof password !== "string" || password === "")
    fail("the stack outputs have no registry user with a password");
  writeFileSync(`${dir}/user`, user);
  writeFileSync(`${dir}/password`, password, { mode: 0o600 });
  writeFileSync(`${dir}/ca.crt`, String(out.registryCaPem ?? ""));
  // The registry runs on the first host of the stack (config/load.ts: registry.host).
  writeFileSync(`${dir}/address`, String(out.hosts?.[0]?.floatingIp ?? ""));
}

const [command, arg, ...rest] = process.argv.slice(2);
if (command === "image" && arg && rest.length === 0) image(arg);
else if (command === "login" && arg && rest.length === 0) login(arg);
else {
  console.error("usage: node scripts/agent-image.mjs image <stack> | login <dir>   (stack outputs on stdin)");
  process.exit(2);
}
