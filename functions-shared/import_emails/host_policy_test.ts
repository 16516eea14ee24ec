import assert from "node:assert/strict";
import { isPrivateAddress, resolveMailboxHost } from "./host_policy.ts";
import { HostNotAllowedError } from "./session_errors.ts";

Deno.test("private, loopback, link-local and reserved addresses are recognised", () => {
  for (
    const address of [
      "127.0.0.1",
      "10.1.2.3",
      "172.16.0.1",
      "172.31.255.255",
      "192.168.1.1",
      "169.254.169.254",
      "100.64.0.1",
      "0.0.0.0",
      "224.0.0.1",
      "255.255.255.255",
      "::1",
      "::",
      "fd00::1",
      "fe80::1",
      "::ffff:127.0.0.1",
      "::ffff:10.0.0.1",
      // Issue 12 item 7: each of these passed before.
      "::ffff:7f00:1",
      "0:0:0:0:0:ffff:127.0.0.1",
      "::7f00:1",
      "64:ff9b::7f00:1",
      "2002:7f00:1::",
      "fec0::1",
      // More of the same forms.
      "::127.0.0.1",
      "0000:0000:0000:0000:0000:0000:0000:0001",
      "::FFFF:A9FE:A9FE",
      "64:ff9b::169.254.169.254",
      "2002:a00:1::1",
      "2002:c0a8:101::",
      "fe80::1%eth0",
      "febf::1",
      "ff02::1",
    ]
  ) assert.equal(isPrivateAddress(address), true, address);
  for (
    const address of [
      "8.8.8.8",
      "172.32.0.1",
      "192.169.0.1",
      "1.1.1.1",
      "2001:4860:4860::8888",
      "::ffff:8.8.8.8",
      "64:ff9b::8.8.8.8",
      "2002:808:808::1",
      "2a00:1450:4001:82a::200e",
    ]
  ) {
    assert.equal(isPrivateAddress(address), false, address);
  }
  assert.equal(isPrivateAddress("not-an-address"), true);
});

Deno.test("IP literals are checked without DNS; private ones refused unless allowed", async () => {
  await assert.rejects(
    resolveMailboxHost("169.254.169.254", { allowPrivate: false }),
    HostNotAllowedError,
  );
  await assert.rejects(
    resolveMailboxHost("10.0.0.5", { allowPrivate: false }),
    /IMAP_ALLOW_PRIVATE_HOSTS/,
  );
  assert.equal(await resolveMailboxHost("10.0.0.5", { allowPrivate: true }), "10.0.0.5");
  assert.equal(await resolveMailboxHost("8.8.8.8", { allowPrivate: false }), "8.8.8.8");
});
