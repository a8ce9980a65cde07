/**
 * Real TLS material for the registry's nginx in end-to-end runs and benchmarks (the program's mock
 * certificates are PEM-shaped placeholders): a throwaway CA and a server certificate for the
 * registry hostname, the host's private IP, 127.0.0.1 and any extra addresses the test reaches it
 * on, made with openssl.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runOk } from "./engine.ts";

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
