// Smoke test for the TypeScript client (openapi-typescript types + openapi-fetch): generate → code
// from the outbox → verify → 200; a wrong code → typed 400 `otp_incorrect`; a second generate →
// 429 with `Retry-After` read by the caller. scripts/check-api generates ./schema.d.ts next to this
// file, type-checks both with tsc and runs the result: node smoke.js BASE_URL OUTBOX_DIR EMAIL
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

type ErrorCode = components["schemas"]["ErrorCode"];

function fail(msg: string): never {
  throw new Error(msg);
}

/** The code in the newest `.eml` addressed to `email`: the text part has it alone on an indented line. */
function codeFromOutbox(dir: string, email: string): string | undefined {
  let best: { mtime: number; code: string } | undefined;
  for (const name of readdirSync(dir)) {
    if (!name.endsWith(".eml")) continue;
    const path = join(dir, name);
    const text = readFileSync(path, "utf8");
    if (!text.split(/\r?\n/).some((l) => l.startsWith("To:") && l.includes(email))) continue;
    const m = text.match(/^[ \t]+([0-9]{6})[ \t]*\r?$/m);
    const mtime = statSync(path).mtimeMs;
    if (m && (!best || mtime > best.mtime)) best = { mtime, code: m[1] };
  }
  return best?.code;
}

async function waitForCode(dir: string, email: string): Promise<string> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const code = codeFromOutbox(dir, email);
    if (code) return code;
    if (Date.now() > deadline) fail(`no mail for ${email} in ${dir}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const [baseUrl, outbox, email] = process.argv.slice(2);
if (!baseUrl || !outbox || !email) fail("usage: node smoke.js BASE_URL OUTBOX_DIR EMAIL");
const client = createClient<paths>({ baseUrl });

// generate → 202
const gen = await client.POST("/otp/generate", { body: { email } });
if (gen.response.status !== 202 || gen.data?.status !== "accepted")
  fail(`generate: ${gen.response.status} ${JSON.stringify(gen.error)}`);
if (!(gen.data.expires_in > 0 && gen.data.retry_after > 0))
  fail(`generate: no expires_in/retry_after in ${JSON.stringify(gen.data)}`);

const code = await waitForCode(outbox, email);

// a wrong code → typed 400 with code otp_incorrect
const wrong = await client.POST("/otp/verify", {
  body: { email, otp: code === "000000" ? "111111" : "000000" },
});
const wrongCode: ErrorCode | undefined = wrong.error?.code;
if (wrong.response.status !== 400 || wrongCode !== "otp_incorrect")
  fail(`wrong code: ${wrong.response.status} ${JSON.stringify(wrong.error)}`);

// the right code → 200 verified
const ok = await client.POST("/otp/verify", { body: { email, otp: code } });
const verified: boolean | undefined = ok.data?.verified;
if (ok.response.status !== 200 || verified !== true || ok.data?.message !== "OTP is correct")
  fail(`verify: ${ok.response.status} ${JSON.stringify(ok.error)}`);

// a second generate within the cooldown → 429 with Retry-After
const again = await client.POST("/otp/generate", { body: { email } });
const retryAfter = Number(again.response.headers.get("Retry-After"));
if (again.response.status !== 429 || again.error?.code !== "rate_limited")
  fail(`second generate: ${again.response.status} ${JSON.stringify(again.error)}`);
if (!Number.isInteger(retryAfter) || retryAfter < 1 || retryAfter > 60)
  fail(`second generate: Retry-After ${again.response.headers.get("Retry-After")}`);
console.log(`typescript client: verified, otp_incorrect, 429 Retry-After=${retryAfter}`);
