/** Moved to testkit/e2e/support/certs.ts (shared with bench/); tests import it from here as before. */
export * from "../../../testkit/e2e/support/certs.ts";
