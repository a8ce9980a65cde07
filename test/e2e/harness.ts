/**
 * The end-to-end harness lives in testkit/e2e/harness.ts, outside test/, because bench/engine.ts
 * uses it too and bench/ may not import test/ (docs/architecture.md, "Layers"). Tests import it
 * from here as before.
 */
export * from "../../testkit/e2e/harness.ts";
