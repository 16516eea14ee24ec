/**
 * Where the importer may connect. A mailbox's host is user input: without a check,
 * a user could point the importer at the project's internal network (loopback,
 * private ranges, the cloud metadata address) and learn from the errors which
 * ports answer. The host is resolved once, every address checked, and the
 * connection then goes to that checked address (TLS still verifies the host name),
 * so a DNS answer cannot change between the check and the connection.
 * Self-hosted setups on a private network set IMAP_ALLOW_PRIVATE_HOSTS=true.
 */
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { HostNotAllowedError } from "./session_errors.ts";

const PRIVATE_V4: Array<[number, number]> = [
  [0x00000000, 8], // "this" network
  [0x0a000000, 8], // 10/8
  [0x64400000, 10], // 100.64/10 carrier-grade NAT
  [0x7f000000, 8], // loopback
  [0xa9fe0000, 16], // 169.254/16 link-local, cloud metadata
  [0xac100000, 12], // 172.16/12
  [0xc0000000, 24], // 192.0.0/24
  [0xc0a80000, 16], // 192.168/16
  [0xc6120000, 15], // 198.18/15 benchmarking
  [0xe0000000, 4], // multicast
  [0xf0000000, 4], // reserved, broadcast
];

function isPrivateV4(value: number): boolean {
  return PRIVATE_V4.some(([network, bits]) =>
    (value >>> (32 - bits)) === (network >>> (32 - bits))
  );
}

function v4ToNumber(address: string): number {
  return address.split(".").reduce((value, part) => value * 256 + Number(part), 0);
}

/** An IPv6 address (any textual form node:net accepts) as its 16 bytes. */
export function ipv6Bytes(address: string): Uint8Array {
  let text = address.toLowerCase().replace(/%.*$/, ""); // a zone id names no other host
  const bytes = new Uint8Array(16);
  const dotted = text.match(/(\d+\.\d+\.\d+\.\d+)$/);
  if (dotted) {
    // The last 32 bits written as IPv4: two groups of hex.
    const value = v4ToNumber(dotted[1]);
    text = text.slice(0, -dotted[1].length) +
      `${(value >>> 16).toString(16)}:${(value & 0xffff).toString(16)}`;
  }
  const [head, tail] = text.includes("::") ? text.split("::") : [text, null];
  const headGroups = head ? head.split(":") : [];
  const tailGroups = tail ? tail.split(":") : [];
  const groups = tail === null
    ? headGroups
    : [...headGroups, ...Array(8 - headGroups.length - tailGroups.length).fill("0"), ...tailGroups];
  groups.forEach((group, i) => {
    const value = parseInt(group, 16);
    bytes[i * 2] = value >> 8;
    bytes[i * 2 + 1] = value & 0xff;
  });
  return bytes;
}

const v4At = (bytes: Uint8Array, offset: number) =>
  ((bytes[offset] << 24) | (bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) |
    bytes[offset + 3]) >>> 0;

/**
 * The IPv4 address an IPv6 address carries, for the forms that reach it: mapped
 * (::ffff:a.b.c.d), compatible (::a.b.c.d), NAT64 (64:ff9b::/96) and 6to4
 * (2002:aabb:ccdd::/16). Null for any other address.
 */
function embeddedV4(bytes: Uint8Array): number | null {
  const zeros = (from: number, to: number) => bytes.subarray(from, to).every((b) => b === 0);
  if (zeros(0, 10) && bytes[10] === 0xff && bytes[11] === 0xff) return v4At(bytes, 12);
  if (zeros(0, 12)) return v4At(bytes, 12); // compatible, and :: and ::1 (0.0.0.x: private)
  if (
    bytes[0] === 0x00 && bytes[1] === 0x64 && bytes[2] === 0xff && bytes[3] === 0x9b && zeros(4, 12)
  ) {
    return v4At(bytes, 12);
  }
  if (bytes[0] === 0x20 && bytes[1] === 0x02) return v4At(bytes, 2);
  return null;
}

export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return isPrivateV4(v4ToNumber(address));
  if (family === 6) {
    const bytes = ipv6Bytes(address);
    const v4 = embeddedV4(bytes);
    if (v4 !== null) return isPrivateV4(v4);
    return (bytes[0] & 0xfe) === 0xfc || // fc00::/7 unique local
      (bytes[0] === 0xfe && (bytes[1] & 0xc0) === 0x80) || // fe80::/10 link-local
      (bytes[0] === 0xfe && (bytes[1] & 0xc0) === 0xc0) || // fec0::/10 site-local (deprecated)
      bytes[0] === 0xff; // multicast
  }
  return true; // not an address at all: refuse
}

/**
 * Resolves the host and returns the address to connect to. Throws
 * HostNotAllowedError for a private or local address unless allowed.
 */
export async function resolveMailboxHost(
  host: string,
  options: { allowPrivate: boolean },
): Promise<string> {
  const addresses = isIP(host)
    ? [{ address: host }]
    : await lookup(host, { all: true, verbatim: true });
  if (addresses.length === 0) throw new HostNotAllowedError(`Cannot resolve ${host}`);
  if (!options.allowPrivate) {
    const blocked = addresses.find(({ address }) => isPrivateAddress(address));
    if (blocked) {
      throw new HostNotAllowedError(
        `Refusing to connect to ${host}: ${blocked.address} is a loopback, private or link-local address ` +
          "(set IMAP_ALLOW_PRIVATE_HOSTS=true for a self-hosted server on a private network)",
      );
    }
  }
  return addresses[0].address;
}
