import { parseMessage } from "./message_parser.ts";
const enc = (s: string) => new TextEncoder().encode(s);
for (const depth of [50, 500, 5000]) {
  let s = "Subject: deep\r\n";
  for (let i = 0; i < depth; i++) s += `Content-Type: multipart/mixed; boundary="b${i}"\r\n\r\n--b${i}\r\n`;
  s += "Content-Type: text/plain\r\n\r\ninnermost\r\n";
  const t = performance.now();
  try {
    const r = await parseMessage(enc(s));
    console.log(depth, r.subject, JSON.stringify(r.body_text), r.parse_error, performance.now() - t);
  } catch (e) { console.log(depth, "THREW", String(e).slice(0, 200)); }
}
const many = "From: a@b.c\r\nTo: " + Array.from({ length: 500 }, (_, i) => `u${i}@x.y`).join(", ") + "\r\n\r\nx";
const r = await parseMessage(enc(many));
console.log(r.to_addresses.length);
