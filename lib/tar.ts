/**
 * Uncompressed ustar archives of regular files, written in memory: what the end-to-end harness
 * uploads into containers, and the layers of the images tests and benchmarks push. Same input,
 * same bytes (mtime 0), so digests are stable. Generic: nothing here knows Berth.
 */

/** One regular file of an archive. */
export interface TarFile {
  /** Path inside the archive; leading slashes are dropped. */
  path: string;
  content: string | Buffer;
  /** Octal string, e.g. "0640". Default "0644". */
  mode?: string;
  uid?: number;
  gid?: number;
}

/**
 * The 512-byte ustar header of a regular file of `size` bytes. A name over 100 bytes is split at a
 * slash into prefix and name, as ustar allows.
 */
export function tarHeader(name: string, size: number, mode = "0644", uid = 0, gid = 0): Buffer {
  const h = Buffer.alloc(512);
  const put = (value: string, offset: number, length: number) => h.write(value, offset, length, "utf8");
  const octal = (n: number, length: number) => n.toString(8).padStart(length - 1, "0") + "\0";
  if (Buffer.byteLength(name) > 100) {
    const slash = name.lastIndexOf("/");
    const prefix = name.slice(0, slash);
    const base = name.slice(slash + 1);
    if (Buffer.byteLength(prefix) > 155 || Buffer.byteLength(base) > 100)
      throw new Error(`path too long for ustar: ${name}`);
    put(base, 0, 100);
    put(prefix, 345, 155);
  } else {
    put(name, 0, 100);
  }
  put(octal(parseInt(mode, 8), 8), 100, 8);
  put(octal(uid, 8), 108, 8);
  put(octal(gid, 8), 116, 8);
  put(octal(size, 12), 124, 12);
  put(octal(0, 12), 136, 12);
  put("        ", 148, 8);
  put("0", 156, 1);
  put("ustar\0", 257, 6);
  put("00", 263, 2);
  let sum = 0;
  for (const byte of h) sum += byte;
  put(octal(sum, 7) + " ", 148, 8);
  return h;
}

/** Zero bytes that pad `size` bytes of content to a whole 512-byte block. */
export const tarPadding = (size: number): Buffer => Buffer.alloc((512 - (size % 512)) % 512);

/** An archive of `files`, in order, with the two zero blocks that end it. */
export function tarArchive(files: readonly TarFile[]): Buffer {
  const parts: Buffer[] = [];
  for (const file of files) {
    const data = typeof file.content === "string" ? Buffer.from(file.content, "utf8") : file.content;
    parts.push(tarHeader(file.path.replace(/^\/+/, ""), data.length, file.mode, file.uid, file.gid));
    parts.push(data, tarPadding(data.length));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}
