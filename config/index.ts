export type * from "./types.ts";
export { ConfigError, type ConfigIssue } from "./errors.ts";
export {
  loadStack,
  readStack,
  resolveConfig,
  derivePreviewValues,
  berthValues,
  PREVIEW_STACK,
} from "./load.ts";
export { validateRaw } from "./validate.ts";
export { DEFAULT_IMAGES, SERVICE_CATALOG } from "./images.ts";
export { parseCidr, parseIpv4 } from "./net.ts";
