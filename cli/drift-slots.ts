/**
 * Application slots in `berth drift` (components/slots.ts). The program declares each slot's front
 * (`slot-<name>`), which drift compares like any declared container. The application containers
 * (`slot-<name>-app`, and `-next`/`-old` while `berth-slot deploy` runs) are the builds': a build
 * replacing one is no drift. Each is judged by its labels:
 *
 * - `org.berth.slot=app|next`, `org.berth.slot.name=<a slot declared for this host>`, this stack's
 *   and this host's labels, and a name the slot gives: the slot's application, never an orphan
 *   (a note says which image it runs); a live one that does not run is reported `stopped`;
 * - the same labels for a slot this host no longer declares: an orphan (pruned like any other);
 * - a container under a declared slot's name (`slot-<name>-app`, `-next`, `-old`) without those
 *   labels, or with another stack's or host's: `foreign`, reported and never removed (it is not
 *   Berth's to remove, and it stands in the slot's way).
 */
import { BERTH_HOST_LABEL, BERTH_STACK_LABEL } from "../config/containers.ts";
import {
  SLOT_APP,
  SLOT_FRONT,
  SLOT_LABEL,
  slotAppName,
  slotContainerNames,
} from "../config/validate-slots.ts";
import type { DeclaredHost } from "../plan/declared.ts";
import type { Engine } from "./engine.ts";
import { at, type Json } from "../lib/json.ts";

/** What drift learns about one host's slot containers. */
export interface SlotJudgement {
  /** Containers that are a declared slot's application: not orphans. */
  applications: Set<string>;
  /** Labelled slot containers of a slot this host does not declare: orphans. */
  undeclared: { name: string; id: string; created: Json | undefined; slot: string }[];
  /** Containers in a declared slot's names that are not Berth's (unlabelled or foreign). */
  foreign: { name: string; details: string[] }[];
  /** A declared slot's live application that does not run. */
  stopped: { name: string; details: string[] }[];
  notes: string[];
}

const str = (v: Json | undefined): string => (typeof v === "string" ? v : "");
const arr = (v: Json | undefined): Json[] => (Array.isArray(v) ? v : []);

/** The slots the program declares on a host: the names its fronts carry. */
export function declaredSlots(declared: DeclaredHost): string[] {
  return declared.containers
    .filter((c) => c.labels[SLOT_LABEL] === SLOT_FRONT)
    .map((c) => c.labels[`${SLOT_LABEL}.name`] ?? "")
    .filter((n) => n !== "");
}

/** Judges every slot container of one host's engine. */
export async function judgeSlots(
  engine: Engine,
  stack: string,
  declared: DeclaredHost,
): Promise<SlotJudgement> {
  const out: SlotJudgement = { applications: new Set(), undeclared: [], foreign: [], stopped: [], notes: [] };
  const slots = declaredSlots(declared);
  const slotOf = new Map<string, string>();
  for (const s of slots)
    for (const n of slotContainerNames(s).filter((n) => n !== `slot-${s}`)) slotOf.set(n, s);
  const all = arr(await engine.call("GET", "/containers/json?all=1"));
  for (const c of all) {
    const name = str(arr(at(c, "Names"))[0]).replace(/^\//, "");
    const labels = (at(c, "Labels") ?? {}) as Record<string, Json>;
    const kind = str(labels[SLOT_LABEL]);
    const slot = str(labels[`${SLOT_LABEL}.name`]);
    const labelled = kind === SLOT_APP;
    const ours = str(labels[BERTH_STACK_LABEL]) === stack && str(labels[BERTH_HOST_LABEL]) === declared.host;
    const declaredSlot = slotOf.get(name);
    if (labelled && ours && slots.includes(slot) && declaredSlot === slot) {
      out.applications.add(name);
      const running = str(at(c, "State")) === "running";
      const image = str(labels[`${SLOT_LABEL}.image`]) || str(at(c, "Image"));
      if (name === slotAppName(slot)) {
        out.notes.push(`slot ${slot}: ${name} runs ${image} (deployed by berth-slot)`);
        if (!running)
          out.stopped.push({ name, details: [`state: ${str(at(c, "State"))}`, `image: ${image}`] });
      } else out.notes.push(`slot ${slot}: ${name} (${image}) is a deploy under way or left by one`);
      continue;
    }
    if (labelled && ours && !slots.includes(slot)) {
      out.undeclared.push({ name, id: str(at(c, "Id")), created: at(c, "Created"), slot });
      continue;
    }
    if (declaredSlot === undefined) continue;
    const why: string[] = [];
    if (!labelled) why.push(`no ${SLOT_LABEL}=${SLOT_APP} label: not made by berth-slot`);
    else if (slot !== declaredSlot)
      why.push(`${SLOT_LABEL}.name is ${JSON.stringify(slot)}, not ${declaredSlot}`);
    if (!ours)
      why.push(
        `labelled ${BERTH_STACK_LABEL}=${JSON.stringify(str(labels[BERTH_STACK_LABEL]))} ${BERTH_HOST_LABEL}=${JSON.stringify(str(labels[BERTH_HOST_LABEL]))}, not ${stack} on ${declared.host}`,
      );
    out.foreign.push({
      name,
      details: [
        ...why,
        `it takes slot ${declaredSlot}'s container name; berth-slot deploy cannot use it: remove it by hand`,
      ],
    });
  }
  for (const s of slots)
    if (!all.some((c) => str(arr(at(c, "Names"))[0]) === `/${slotAppName(s)}`))
      out.notes.push(`slot ${s}: no application deployed yet`);
  return out;
}
