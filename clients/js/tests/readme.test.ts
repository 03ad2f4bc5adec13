/**
 * The README's quick start, run as written against a real daemon: its
 * JavaScript block in a module of this package (so `import ... from
 * "luapool"` finds the package by its name, as in a user's project), with
 * the daemon's socket in place of `/tmp/luapool.sock`.
 */

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { HANG_MS, REPO } from "./daemon.js";
import { withDaemon } from "./reference.js";

const { daemon } = withDaemon();

/** The first ```js block after `## Quick start` in the package's README. */
function quickStart(): string {
  const readme = readFileSync(join(REPO, "clients/js/README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Quick start"));
  const block = /```js\n([\s\S]*?)```/.exec(section);
  assert.ok(block, "a ```js block in the README's quick start");
  return block[1];
}

test("the README's quick start runs as written and prints what it says", async () => {
  const code = quickStart();
  assert.ok(code.includes('"/tmp/luapool.sock"') && code.includes('from "luapool"'), code);
  const file = join(dirname(fileURLToPath(import.meta.url)), "readme-quick-start.mjs");
  writeFileSync(file, code.replace('"/tmp/luapool.sock"', JSON.stringify(daemon().socket)));
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [file], { timeout: HANG_MS });
    // What the README's comment says it prints (a Lua table's keys come in no set order).
    const [printed] = code.split("\n").filter((l) => l.startsWith("// [ 'success' ]"));
    const object = (line: string) => line.slice(line.indexOf("{")).trim().replace(/^\{ | \}$/g, "").split(", ").sort();
    const head = (line: string) => line.slice(0, line.indexOf("{")).trim();
    assert.equal(head(stdout), head(printed.slice(3)));
    assert.deepEqual(object(stdout), object(printed));
  } finally {
    rmSync(file, { force: true });
  }
});
