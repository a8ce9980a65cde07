import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RenderError } from "../../renderers/common.ts";
import { agentHostKeyPaths, renderAgentSshdConfig, type AgentSshdInput } from "../../renderers/sshd.ts";
import {
  describeWithTools,
  freePort,
  run,
  startDaemon,
  tempDir,
  toolPath,
  tools,
  waitFor,
  type Daemon,
} from "./helpers.ts";

describe("renderAgentSshdConfig", () => {
  it("is deterministic and matches the reviewed snapshot", async () => {
    expect(renderAgentSshdConfig()).toBe(renderAgentSshdConfig({}));
    await expect(renderAgentSshdConfig()).toMatchFileSnapshot("./__snapshots__/sshd_config.txt");
  });

  it("is key-only, for jenkins, with host keys from the persistent directory", () => {
    const lines = renderAgentSshdConfig().split("\n");
    for (const l of [
      "Port 22",
      "HostKey /etc/ssh/berth-hostkeys/ssh_host_ed25519_key",
      "HostKey /etc/ssh/berth-hostkeys/ssh_host_rsa_key",
      "PermitRootLogin no",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "PubkeyAuthentication yes",
      "AuthenticationMethods publickey",
      "AuthorizedKeysFile .ssh/authorized_keys",
      "AllowUsers jenkins",
      "X11Forwarding no",
      "UsePAM yes",
      "PidFile /run/sshd.pid",
      "PermitUserEnvironment no",
      "Subsystem sftp internal-sftp",
    ]) {
      expect(lines).toContain(l);
    }
  });

  it("takes port, users, key directory and keepalive", () => {
    const conf = renderAgentSshdConfig({
      port: 2222,
      allowUsers: ["jenkins", "builder"],
      hostKeyDir: "/srv/keys/",
      clientAliveIntervalSeconds: 60,
      usePam: false,
    });
    expect(conf).toContain("Port 2222\n");
    expect(conf).toContain("AllowUsers jenkins builder\n");
    expect(conf).toContain("HostKey /srv/keys/ssh_host_ed25519_key\n");
    expect(conf).toContain("ClientAliveInterval 60\nClientAliveCountMax 3\n");
    expect(conf).toContain("UsePAM no\n");
    expect(agentHostKeyPaths("/srv/keys")).toEqual({
      ed25519: "/srv/keys/ssh_host_ed25519_key",
      rsa: "/srv/keys/ssh_host_rsa_key",
    });
  });

  it.each<[string, AgentSshdInput, RegExp]>([
    ["root", { allowUsers: ["root"] }, /root must not/],
    ["no users", { allowUsers: [] }, /allowUsers/],
    ["a user with a space", { allowUsers: ["jen kins"] }, /allowUsers/],
    ["duplicate users", { allowUsers: ["a", "a"] }, /duplicates/],
    ["a relative key directory", { hostKeyDir: "keys" }, /hostKeyDir/],
    ["a key directory with a newline", { hostKeyDir: "/k\nPermitRootLogin yes" }, /hostKeyDir/],
    ["port 0", { port: 0 }, /port/],
    ["a hostname as listen address", { listenAddress: "agent" }, /listenAddress/],
  ])("refuses %s", (_what, input, message) => {
    expect(() => renderAgentSshdConfig(input)).toThrow(RenderError);
    expect(() => renderAgentSshdConfig(input)).toThrow(message);
  });
});

describeWithTools(
  "sshd accepts the rendered config",
  { tools: [tools.sshd, tools.sshKeygen, tools.sshKeyscan], root: true },
  () => {
    let tmp = { path: "", remove: () => {} };
    let sshd: Daemon | undefined;
    let confPath = "";
    let port = 0;
    let keys = { ed25519: "", rsa: "" };

    beforeAll(async () => {
      tmp = tempDir("sshd");
      // sshd's privilege separation directory (Debian: /run/sshd).
      if (!existsSync("/run/sshd")) mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
      const keyDir = join(tmp.path, "hostkeys");
      mkdirSync(keyDir, { mode: 0o700 });
      keys = agentHostKeyPaths(keyDir);
      for (const [type, file, extra] of [
        ["ed25519", keys.ed25519, []],
        ["rsa", keys.rsa, ["-b", "3072"]],
      ] as const) {
        const r = run(toolPath(tools.sshKeygen), [
          "-q",
          "-t",
          type,
          ...extra,
          "-N",
          "",
          "-C",
          "berth-test",
          "-f",
          file,
        ]);
        expect(r.status, r.stderr).toBe(0);
      }
      port = await freePort();
      confPath = join(tmp.path, "sshd_config");
      writeFileSync(
        confPath,
        renderAgentSshdConfig({
          port,
          listenAddress: "127.0.0.1",
          hostKeyDir: keyDir,
          pidFile: join(tmp.path, "sshd.pid"),
        }),
      );
    });

    afterAll(async () => {
      await sshd?.stop();
      tmp.remove();
    });

    it("sshd -t exits 0", () => {
      const r = run(toolPath(tools.sshd), ["-t", "-f", confPath]);
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
    });

    it("sshd -T shows the effective settings we meant", () => {
      const r = run(toolPath(tools.sshd), ["-T", "-f", confPath]);
      expect(r.status, r.stderr).toBe(0);
      const effective = r.stdout.split("\n");
      for (const l of [
        `port ${port}`,
        "permitrootlogin no",
        "passwordauthentication no",
        "kbdinteractiveauthentication no",
        "pubkeyauthentication yes",
        "authenticationmethods publickey",
        "authorizedkeysfile .ssh/authorized_keys",
        "allowusers jenkins",
        "x11forwarding no",
        "allowtcpforwarding no",
        "usepam yes",
        "permituserenvironment no",
        `hostkey ${keys.ed25519}`,
        `hostkey ${keys.rsa}`,
        "subsystem sftp internal-sftp",
      ]) {
        expect(effective).toContain(l);
      }
    });

    it("a running sshd presents exactly the host keys from the key directory", async () => {
      sshd = startDaemon(toolPath(tools.sshd), ["-D", "-e", "-f", confPath]);
      let scanned = "";
      await waitFor("sshd", async () => {
        const r = run(toolPath(tools.sshKeyscan), [
          "-T",
          "3",
          "-p",
          String(port),
          "-t",
          "ed25519,rsa",
          "127.0.0.1",
        ]);
        scanned = r.stdout;
        return scanned.includes("ssh-ed25519") && scanned.includes("ssh-rsa");
      }).catch((e: unknown) => {
        throw new Error(`${String(e)}\n${sshd?.output() ?? ""}`);
      });
      const served = scanned
        .split("\n")
        .filter((l) => l.startsWith("["))
        .map((l) => l.split(" ").slice(1, 3).join(" "))
        .sort();
      const expected = [keys.ed25519, keys.rsa]
        .map((k) => readFileSync(`${k}.pub`, "utf8").split(" ").slice(0, 2).join(" "))
        .sort();
      expect(served).toEqual(expected);
    });
  },
);
