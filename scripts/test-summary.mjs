// Prints vitest's JSON report as one plain line: "N passed, N failed, N skipped".
import { readFileSync } from "node:fs";

const file = process.argv[2] ?? ".cache/vitest-report.json";
const r = JSON.parse(readFileSync(file, "utf8"));
const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
