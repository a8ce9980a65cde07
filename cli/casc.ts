/** `berth jenkins-casc <stack>`: the Jenkins Configuration-as-Code Docker clouds of a stack. */
import { cascForStack } from "../plan/casc.ts";

/**
 * The YAML to print. It runs the program under mocks, so the dockerd addresses are placeholders
 * (the header says so); the stack output `jenkinsCasc` carries the real ones.
 */
export async function jenkinsCascText(root: string, stack: string): Promise<string> {
  return (await cascForStack(root, stack)).yaml;
}
