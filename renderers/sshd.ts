/**
 * `sshd_config` for a Jenkins SSH agent container (`jenkins/ssh-agent` or a stand-in with the same
 * layout): public-key login for the `jenkins` user only.
 *
 * Host keys are read from a directory meant to be a volume, so a recreated container keeps its
 * identity and the controller's known_hosts check keeps passing. The image's entrypoint runs
 * `ssh-keygen -A` (fresh keys in /etc/ssh) on every start; this file ignores those.
 *
 * `UsePAM yes`, as in the upstream image: the entrypoint publishes the container's environment
 * (JAVA_HOME, PATH, …) through /etc/environment, which only pam_env reads into SSH sessions; and
 * the `jenkins` account is created without a password (locked, `!` in /etc/shadow), which sshd
 * refuses outright when PAM is off. Authentication stays key-only (`AuthenticationMethods publickey`).
 */
import { RenderError, checkIntRange, checkPath, checkPort, isIpAddress, joinLines } from "./common.ts";

const R = "renderAgentSshdConfig";

export interface AgentSshdInput {
  /** Default 22. */
  port?: number;
  /** Bind only this address. Default: all. */
  listenAddress?: string;
  /** Directory of the persistent host keys. Default `/etc/ssh/berth-hostkeys`. */
  hostKeyDir?: string;
  /** Users allowed to log in. Default `["jenkins"]`. `root` is refused. */
  allowUsers?: readonly string[];
  /** Default `/run/sshd.pid`. */
  pidFile?: string;
  /** Default true; see the module comment before turning it off. */
  usePam?: boolean;
  /** sshd `LogLevel`. Default `INFO`. */
  logLevel?: "QUIET" | "FATAL" | "ERROR" | "INFO" | "VERBOSE" | "DEBUG";
  /**
   * Seconds between server keepalive probes (`ClientAliveInterval`), with `ClientAliveCountMax 3`.
   * Default: off (TCP keepalive only), since an SSH client that ignores the probes would be cut off.
   */
  clientAliveIntervalSeconds?: number;
}

export const SSHD_DEFAULTS = {
  port: 22,
  hostKeyDir: "/etc/ssh/berth-hostkeys",
  allowUsers: ["jenkins"] as readonly string[],
  pidFile: "/run/sshd.pid",
  usePam: true,
  logLevel: "INFO",
} as const;

/** Where sshd expects each host key (private key; the `.pub` beside it) inside `hostKeyDir`. */
export function agentHostKeyPaths(hostKeyDir: string = SSHD_DEFAULTS.hostKeyDir): {
  ed25519: string;
  rsa: string;
} {
  const dir = checkPath(R, "hostKeyDir", hostKeyDir).replace(/\/+$/, "");
  return { ed25519: `${dir}/ssh_host_ed25519_key`, rsa: `${dir}/ssh_host_rsa_key` };
}

const LOG_LEVELS = ["QUIET", "FATAL", "ERROR", "INFO", "VERBOSE", "DEBUG"];

/** Renders the agent's sshd_config. Deterministic: the same input gives the same bytes. */
export function renderAgentSshdConfig(input: AgentSshdInput = {}): string {
  const port = checkPort(R, "port", input.port ?? SSHD_DEFAULTS.port);
  if (input.listenAddress !== undefined && !isIpAddress(input.listenAddress)) {
    throw new RenderError(R, "listenAddress", `${JSON.stringify(input.listenAddress)} is not an IP address`);
  }
  const keys = agentHostKeyPaths(input.hostKeyDir ?? SSHD_DEFAULTS.hostKeyDir);
  const users = input.allowUsers ?? SSHD_DEFAULTS.allowUsers;
  if (users.length === 0) throw new RenderError(R, "allowUsers", "must name at least one user");
  for (const u of users) {
    if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(u)) {
      throw new RenderError(R, "allowUsers", `${JSON.stringify(u)} is not a POSIX user name`);
    }
    if (u === "root") throw new RenderError(R, "allowUsers", "root must not log in to an agent");
  }
  if (new Set(users).size !== users.length) throw new RenderError(R, "allowUsers", "has duplicates");
  const pidFile = checkPath(R, "pidFile", input.pidFile ?? SSHD_DEFAULTS.pidFile);
  const logLevel = input.logLevel ?? SSHD_DEFAULTS.logLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new RenderError(
      R,
      "logLevel",
      `${JSON.stringify(logLevel)} is not one of ${LOG_LEVELS.join(", ")}`,
    );
  }
  const usePam = input.usePam ?? SSHD_DEFAULTS.usePam;

  const lines = [
    "# Rendered by Berth (renderers/sshd.ts): Jenkins SSH agent, public-key login only.",
    `Port ${port}`,
  ];
  if (input.listenAddress !== undefined) lines.push(`ListenAddress ${input.listenAddress}`);
  lines.push(
    "",
    "# Persistent host keys (a volume), so the controller's known_hosts survives a new container.",
    `HostKey ${keys.ed25519}`,
    `HostKey ${keys.rsa}`,
    `PidFile ${pidFile}`,
    "SyslogFacility AUTH",
    `LogLevel ${logLevel}`,
    "",
    "PermitRootLogin no",
    "PubkeyAuthentication yes",
    "AuthorizedKeysFile .ssh/authorized_keys",
    "AuthenticationMethods publickey",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "HostbasedAuthentication no",
    "PermitEmptyPasswords no",
    "StrictModes yes",
    `UsePAM ${usePam ? "yes" : "no"}`,
    `AllowUsers ${users.join(" ")}`,
    "",
    "X11Forwarding no",
    "AllowAgentForwarding no",
    "AllowTcpForwarding no",
    "GatewayPorts no",
    "PermitTunnel no",
    "PermitUserEnvironment no",
    "PrintMotd no",
    "TCPKeepAlive yes",
  );
  if (input.clientAliveIntervalSeconds !== undefined) {
    const interval = checkIntRange(
      R,
      "clientAliveIntervalSeconds",
      input.clientAliveIntervalSeconds,
      1,
      3600,
    );
    lines.push(`ClientAliveInterval ${interval}`, "ClientAliveCountMax 3");
  }
  lines.push("", "# The Jenkins SSH launcher copies remoting.jar over SFTP.", "Subsystem sftp internal-sftp");
  return joinLines(lines);
}
