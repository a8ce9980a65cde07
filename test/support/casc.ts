/**
 * The Jenkins Configuration-as-Code snippet (`berth jenkins-casc`, the `jenkinsCasc` output) as the
 * tests read it back from YAML: the Docker clouds' fields they check (renderers/casc.ts writes them).
 */

/** One Docker cloud of the snippet. */
export interface Cloud {
  docker: {
    name: string;
    dockerApi: { dockerHost: { uri: string; credentialsId: string } };
    containerCap: number;
    templates: Record<string, unknown>[];
  };
}

/** The parsed snippet (`null` when empty: no per-build host). */
export type Casc = { jenkins: { clouds: Cloud[] } } | null;
