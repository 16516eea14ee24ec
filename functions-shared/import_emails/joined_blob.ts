/**
 * A speed workaround for postal-mime under Deno, kept as small and as scoped as we
 * could make it.
 *
 * postal-mime collects a 7bit/8bit body as two Blob parts per line and joins them
 * with `new Blob(parts)`. Deno's Blob is slow per part: an 80 KB text body took
 * ~25 ms to parse, ~2.8 ms when the parts are joined into one byte array first
 * (measured in Deno 2.9, BENCHMARKS.md). JoinedBlob is a real Blob subclass that does
 * exactly that join and nothing else: same bytes, same type, `instanceof Blob`.
 * It replaces the global Blob only while a parse runs (counted, so overlapping parses
 * restore it correctly). Remove it once postal-mime batches lines itself.
 */
const NativeBlob = globalThis.Blob;
const encoder = new TextEncoder();
// postal-mime's parts alternate a line and "\n": encode such tiny strings once.
const tinyStrings = new Map<string, Uint8Array>();
const encode = (text: string) => {
  if (text.length > 2) return encoder.encode(text);
  let bytes = tinyStrings.get(text);
  if (!bytes) tinyStrings.set(text, bytes = encoder.encode(text));
  return bytes;
};

class JoinedBlob extends NativeBlob {
  constructor(parts: BlobPart[] = [], options?: BlobPropertyBag) {
    const chunks: Uint8Array[] = [];
    for (const part of parts) {
      if (typeof part === "string") chunks.push(encode(part));
      else if (part instanceof Uint8Array) chunks.push(part);
      else {
        super(parts, options); // anything else: the native behaviour, unchanged
        return;
      }
    }
    const joined = new Uint8Array(chunks.reduce((size, chunk) => size + chunk.byteLength, 0));
    let offset = 0;
    for (const chunk of chunks) {
      joined.set(chunk, offset);
      offset += chunk.byteLength;
    }
    super([joined], options);
  }
}

let active = 0;

export async function withJoinedBlob<T>(task: () => Promise<T>): Promise<T> {
  if (active++ === 0) globalThis.Blob = JoinedBlob as typeof Blob;
  try {
    return await task();
  } finally {
    if (--active === 0) globalThis.Blob = NativeBlob;
  }
}
