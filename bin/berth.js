#!/usr/bin/env node
// Entry point of the `berth` command: registers the TypeScript loader, then runs the CLI.
import * as nodeModule from "node:module";
import { register } from "tsx/esm/api";

// Node caches the compiled code of the modules it loads (the Pulumi SDKs are large), under the
// system's temporary directory; a second run starts faster (docs/performance.md).
nodeModule.enableCompileCache?.();
register();
const { main } = await import("../cli/main.ts");
process.exitCode = await main(process.argv.slice(2));
