/** Pure config-file renderers (no Pulumi imports): same input, same bytes. */
export { RenderError } from "./common.ts";
export {
  renderRegistryConfig,
  REGISTRY_DEFAULTS,
  type RegistryConfigInput,
  type RegistryProxyInput,
} from "./registry.ts";
export {
  renderNginxConfig,
  NGINX_DEFAULTS,
  OLD_DOCKER_USER_AGENT,
  type NginxConfigInput,
  type NginxMirrorInput,
} from "./nginx.ts";
export {
  htpasswdEntry,
  renderHtpasswd,
  bcryptSaltFrom,
  checkHtpasswdUser,
  parseHtpasswdLine,
  BCRYPT_DEFAULT_COST,
  GENERATED_PASSWORD_MIN_LENGTH,
  sshaEntry,
  type HtpasswdOptions,
} from "./htpasswd.ts";
export { renderAgentSshdConfig, agentHostKeyPaths, SSHD_DEFAULTS, type AgentSshdInput } from "./sshd.ts";
export { renderDnsmasqConfig, sortedDnsRecords, type DnsmasqConfigInput, type DnsRecord } from "./dnsmasq.ts";
export { renderResolvConf, type ResolvConfInput } from "./resolv.ts";
