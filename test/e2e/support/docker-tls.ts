/**
 * Real certificates shaped like a stack's Docker TLS material (components/pki.ts and CiEnvironment's
 * build credentials; the mock's are placeholders), made with openssl for a multi-host e2e run: one
 * dockerd CA; per host a server certificate (CN and SANs: the host's name, localhost, its private
 * address, 127.0.0.1), its own build CA and a build client certificate from it; and per host the
 * CA bundle dockerd verifies clients with (the dockerd CA and that host's build CA only,
 * renderers/docker-access.ts clientCaBundle). So one host's build credentials are refused by every
 * other host's dockerd.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { clientCaBundle } from "../../../renderers/docker-access.ts";
import { runOk } from "../../../testkit/e2e/support/engine.ts";

export interface HostDockerTls {
  host: string;
  /** dockerd's --tlscacert: the dockerd CA and this host's build CA. */
  clientCas: string;
  serverCert: string;
  serverKey: string;
  /** DOCKER_CERT_PATH layout (ca.pem = dockerd CA, cert.pem, key.pem) of this host's build client. */
  buildClientDir: string;
  /** The dockerd flags of a TLS endpoint on 0.0.0.0:`port` with this material. */
  dockerdArgs: (port: number) => string;
}

const openssl = (...args: string[]) => runOk("openssl", args);

export function makeStackDockerTls(
  dir: string,
  stack: string,
  hosts: readonly { name: string; address: string }[],
): { caPem: string; hosts: HostDockerTls[] } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  const ca = (name: string, cn: string) =>
    openssl(
      "req",
      "-x509",
      ...ec,
      "-keyout",
      join(dir, `${name}-key.pem`),
      "-out",
      join(dir, `${name}.pem`),
      "-days",
      "2",
      "-subj",
      `/O=Berth/CN=${cn}`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    );
  const issue = (name: string, caName: string, cn: string, ext: string[]) => {
    writeFileSync(join(dir, `${name}.ext`), `${ext.join("\n")}\n`);
    openssl(
      "req",
      "-new",
      ...ec,
      "-keyout",
      join(dir, `${name}-key.pem`),
      "-out",
      join(dir, `${name}.csr`),
      "-subj",
      `/O=Berth/CN=${cn}`,
    );
    openssl(
      "x509",
      "-req",
      "-in",
      join(dir, `${name}.csr`),
      "-CA",
      join(dir, `${caName}.pem`),
      "-CAkey",
      join(dir, `${caName}-key.pem`),
      "-set_serial",
      `0x${randomBytes(8).toString("hex")}`,
      "-days",
      "2",
      "-out",
      join(dir, `${name}.pem`),
      "-extfile",
      join(dir, `${name}.ext`),
    );
  };
  ca("dockerd-ca", `Berth ${stack} dockerd CA (e2e)`);
  const caPem = readFileSync(join(dir, "dockerd-ca.pem"), "utf8");
  const keyUsage = "keyUsage=critical,digitalSignature,keyEncipherment";
  return {
    caPem,
    hosts: hosts.map((h) => {
      issue(`${h.name}-server`, "dockerd-ca", h.name, [
        "basicConstraints=CA:FALSE",
        keyUsage,
        "extendedKeyUsage=serverAuth",
        `subjectAltName=DNS:${h.name},DNS:localhost,IP:${h.address},IP:127.0.0.1`,
      ]);
      ca(`${h.name}-build-ca`, `Berth ${h.name} build CA (e2e)`);
      issue(`${h.name}-build`, `${h.name}-build-ca`, `builds@${h.name}`, [
        "basicConstraints=CA:FALSE",
        keyUsage,
        "extendedKeyUsage=clientAuth",
      ]);
      const clientCas = join(dir, `${h.name}-client-cas.pem`);
      writeFileSync(
        clientCas,
        clientCaBundle([caPem, readFileSync(join(dir, `${h.name}-build-ca.pem`), "utf8")]),
      );
      const buildClientDir = join(dir, `${h.name}-build-client`);
      mkdirSync(buildClientDir, { mode: 0o700 });
      writeFileSync(join(buildClientDir, "ca.pem"), caPem);
      writeFileSync(join(buildClientDir, "cert.pem"), readFileSync(join(dir, `${h.name}-build.pem`)));
      writeFileSync(join(buildClientDir, "key.pem"), readFileSync(join(dir, `${h.name}-build-key.pem`)), {
        mode: 0o600,
      });
      const serverCert = join(dir, `${h.name}-server.pem`);
      const serverKey = join(dir, `${h.name}-server-key.pem`);
      return {
        host: h.name,
        clientCas,
        serverCert,
        serverKey,
        buildClientDir,
        dockerdArgs: (port: number) =>
          `--tlsverify --tlscacert=${clientCas} --tlscert=${serverCert} --tlskey=${serverKey} ` +
          `--host=tcp://0.0.0.0:${String(port)}`,
      };
    }),
  };
}
