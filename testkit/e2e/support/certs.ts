/**
 * Real key material for end-to-end runs and benchmarks (the program's mock keys and certificates
 * are PEM-shaped placeholders): for the registry's nginx, a throwaway CA and a server certificate
 * for the registry hostname, the host's private IP, 127.0.0.1 and any extra addresses the test
 * reaches it on, made with openssl; for the agents, SSH host keys made with ssh-keygen.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { agentHostKeyPaths } from "../../../renderers/index.ts";
import { runOk } from "./engine.ts";

/**
 * Real SSH host keys (ed25519 and RSA 3072) for `agent`, as replacement uploads: file path in the
 * agent container → content, for the four files the agent's sshd reads (renderers
 * `agentHostKeyPaths`). The key files are written under `workDir`.
 */
export function agentHostKeyUploads(workDir: string, agent: string): Record<string, string> {
  const key = (type: string, ...args: string[]) => {
    const file = join(workDir, `${agent}-${type}`);
    runOk("ssh-keygen", ["-q", "-N", "", "-C", `e2e-${agent}`, "-t", type, "-f", file, ...args]);
    return file;
  };
  const ed = key("ed25519");
  const rsa = key("rsa", "-b", "3072");
  const hk = agentHostKeyPaths();
  return {
    [hk.ed25519]: readFileSync(ed, "utf8"),
    [`${hk.ed25519}.pub`]: readFileSync(`${ed}.pub`, "utf8"),
    [hk.rsa]: readFileSync(rsa, "utf8"),
    [`${hk.rsa}.pub`]: readFileSync(`${rsa}.pub`, "utf8"),
  };
}

export interface RegistryTls {
  caCertPath: string;
  serverCertPath: string;
  serverKeyPath: string;
}

/** Writes the CA certificate to `caCertPath` and everything else under `workDir`. */
export function issueRegistryTls(args: {
  workDir: string;
  caCertPath: string;
  caName: string;
  hostname: string;
  privateIp: string;
  /** More IP SANs, e.g. the non-loopback address a test publishes the registry on. */
  extraIps?: readonly string[];
}): RegistryTls {
  const { workDir, caCertPath, hostname, privateIp } = args;
  const ips = [privateIp, "127.0.0.1", ...(args.extraIps ?? [])].map((ip) => `IP:${ip}`).join(",");
  const ssl = (...a: string[]) => runOk("openssl", a);
  const caKey = join(workDir, "ca.key");
  ssl(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    caKey,
    "-out",
    caCertPath,
    "-days",
    "2",
    "-subj",
    `/CN=${args.caName}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  );
  const serverKeyPath = join(workDir, "server.key");
  const csr = join(workDir, "server.csr");
  ssl(
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    serverKeyPath,
    "-out",
    csr,
    "-subj",
    `/CN=${hostname}`,
  );
  const ext = join(workDir, "ext.cnf");
  writeFileSync(
    ext,
    `subjectAltName=DNS:${hostname},${ips}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`,
  );
  const serverCertPath = join(workDir, "server.crt");
  ssl(
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    caCertPath,
    "-CAkey",
    caKey,
    "-CAcreateserial",
    "-out",
    serverCertPath,
    "-days",
    "2",
    "-extfile",
    ext,
  );
  return { caCertPath, serverCertPath, serverKeyPath };
}
