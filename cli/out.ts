/**
 * The `--out` directory of `berth plan` and `berth render`: checked before anything runs, so a bad
 * path is one clear error naming `--out` and the fix (exit 1), never a Node stack trace.
 */
import { accessSync, constants, statSync } from "node:fs";
import { dirname, resolve } from "node:path";

/** A bad `--out`; `berth` prints its message and exits 1. */
export class OutDirError extends Error {
  override name = "OutDirError";
}

const FIX = "give --out a directory you can write to (it is created when missing)";

function describeError(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  switch (code) {
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "EROFS":
      return "it is on a read-only file system";
    case "ENOTDIR":
      return "a part of the path is a file, not a directory";
    case "EEXIST":
      return "a file is in the way";
    case "EISDIR":
      return "a directory is in the way";
    case "ENOSPC":
      return "no space left on the device";
    default:
      return code ?? String(e);
  }
}

/**
 * Throws an {@link OutDirError} unless `out` is (or can be created as) a writable directory:
 * not empty, not a file or device (`/dev/null`), not below a file, not in a read-only directory
 * or file system.
 */
export function checkOutDir(out: string): void {
  if (out.trim() === "") throw new OutDirError(`--out is empty: ${FIX}, e.g. --out out/plan/<stack>.`);
  const abs = resolve(out);
  // The path itself, else its nearest existing ancestor, which must be a directory.
  let existing = abs;
  for (;;) {
    let st;
    try {
      st = statSync(existing);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT" && dirname(existing) !== existing) {
        existing = dirname(existing);
        continue;
      }
      if (code === "ENOTDIR")
        throw new OutDirError(`--out ${out}: a part of the path is a file, not a directory; ${FIX}.`);
      throw new OutDirError(`--out ${out}: cannot inspect ${existing} (${describeError(e)}); ${FIX}.`);
    }
    if (!st.isDirectory()) {
      const what = st.isFile() ? "a file" : "not a directory (a device or other special file)";
      throw new OutDirError(
        existing === abs
          ? `--out ${out} is ${what}; ${FIX}.`
          : `--out ${out}: ${existing} is ${what}, so nothing can be created below it; ${FIX}.`,
      );
    }
    break;
  }
  try {
    accessSync(existing, constants.W_OK | constants.X_OK);
  } catch (e) {
    throw new OutDirError(
      `--out ${out}: ${existing === abs ? "the directory" : existing} is not writable (${describeError(e)}); ${FIX}.`,
    );
  }
}

/** Runs `write` (which writes below `out`), turning a file-system error into an {@link OutDirError}. */
export function writingTo<T>(out: string, write: () => T): T {
  try {
    return write();
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (typeof err.code !== "string" || err.syscall === undefined) throw e;
    throw new OutDirError(`--out ${out}: cannot write ${err.path ?? out} (${describeError(e)}); ${FIX}.`);
  }
}
