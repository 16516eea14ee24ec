import assert from "node:assert/strict";
import { checkPassword, plainPassword } from "./accounts.ts";

const passwd = "alice:{PLAIN}s3cret::::::\nbob:{SHA256}abc::::::\n";

Deno.test("the {PLAIN} password of a passwd-file user, and nothing for others", () => {
  assert.equal(plainPassword(passwd, "alice"), "s3cret");
  assert.equal(plainPassword(passwd, "bob"), undefined, "only {PLAIN} entries");
  assert.equal(plainPassword(passwd, "carol"), undefined);
  assert.equal(plainPassword(passwd, ""), undefined);
});

Deno.test("sign-in checks name and password against the IMAP users", async () => {
  const file = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(file, passwd);
    assert.equal(await checkPassword(file, { username: "alice", password: "s3cret" }), true);
    assert.equal(await checkPassword(file, { username: "ALICE", password: "s3cret" }), true);
    assert.equal(await checkPassword(file, { username: "alice", password: "s3cret " }), false);
    assert.equal(await checkPassword(file, { username: "alice", password: "" }), false);
    assert.equal(await checkPassword(file, { username: "carol", password: "" }), false);
    assert.equal(
      await checkPassword(`${file}.missing`, { username: "alice", password: "s3cret" }),
      false,
    );
  } finally {
    await Deno.remove(file);
  }
});
