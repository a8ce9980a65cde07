/**
 * Berth's policy pack. Pulumi runs this file (`pulumi preview|up --policy-pack policy`); it serves
 * the policies over gRPC to the engine. Tests import `./policies.ts` instead: constructing the pack
 * starts that server.
 *
 * Loaded by Pulumi's policy runner through ts-node as CommonJS (see package.json here), hence the
 * extension-less import.
 */
import { PolicyPack } from "@pulumi/policy";
import { policies } from "./policies";

new PolicyPack("berth", {
  description:
    "Berth guard rails: no world-open sensitive ports (alone or together), registry behind TLS and auth, digest-pinned images, protected production data, user data within Nova's limit.",
  enforcementLevel: "mandatory",
  policies,
});
