/**
 * Scripts by digest: `loadScript` gives Redis's digest (SHA-1 of the code),
 * `compute` takes it in place of the code on the connection that loaded
 * it, and an unknown digest is a `NoScriptError`.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { NoScriptError } from "../src/index.js";
import { failure } from "./daemon.js";
import { withDaemon } from "./reference.js";

const { session, client, daemon } = withDaemon();

test("a loaded script runs by its digest on its connection only", async () => {
  const code = "_io.output = (_io.output or 0) + 1 return _io.output";
  const digest = await client().loadScript(code);
  assert.equal(digest, createHash("sha1").update(code).digest("hex"));
  const s = await session();
  assert.deepEqual((await s.compute(digest)).values, [1]);
  assert.deepEqual((await s.compute(digest.toUpperCase())).values, [2]);
  // Loading it again gives the same digest.
  assert.equal(await client().loadScript(code), digest);

  const other = await daemon().client();
  try {
    const o = await other.session();
    const e = await failure(o.compute(digest));
    assert.ok(e instanceof NoScriptError, String(e));
    assert.equal(e.kind, "NoScript");
    assert.equal(e.details.digest, digest);
    await other.loadScript(code);
    assert.deepEqual((await o.compute(digest)).values, [1]);
  } finally {
    await other.close();
  }
});
