/**
 * What `pulumi up --stack <stack>` runs. Reads and validates the stack's configuration once (a bad
 * configuration stops here, with one message, before any resource is registered), then builds the
 * stack. The exports are the stack outputs.
 */
import { loadConfigFromPulumi } from "./config/pulumi.ts";
import { berthProgram } from "./program.ts";
import { renderedIssues } from "./stack/validate.ts";

const outputs = berthProgram(loadConfigFromPulumi(undefined, renderedIssues));

export const environment = outputs.environment;
export const hosts = outputs.hosts;
export const registryUrl = outputs.registryUrl;
export const registryCaPem = outputs.registryCaPem;
export const agentEndpoints = outputs.agentEndpoints;
export const dockerTlsEndpoints = outputs.dockerTlsEndpoints;
export const dockerTlsCaPem = outputs.dockerTlsCaPem;
export const dockerTlsClientCertPem = outputs.dockerTlsClientCertPem;
export const dockerTlsClientKeyPem = outputs.dockerTlsClientKeyPem;
export const registryUsers = outputs.registryUsers;
export const registryPasswords = outputs.registryPasswords;
export const agentKnownHosts = outputs.agentKnownHosts;
export const serviceCredentials = outputs.serviceCredentials;
export const jenkinsCasc = outputs.jenkinsCasc;
export const logsClientCaPem = outputs.logsClientCaPem;
