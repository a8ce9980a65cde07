import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The project root (where Pulumi.yaml and stacks/ are). */
export const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
