/**
 * Big integers and Lua functions through a real daemon (issue 18): a
 * `bigint` goes in and comes back exact (ext 1), a function stored in
 * `_home` is called by a later compute, another session and a restarted
 * daemon, functions come back as `LuaFunction`, and bad input is refused.
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { BadRequestError, LuaError, LuaFunction } from "../src/index.js";
import { Daemon, failure } from "./daemon.js";
import { evalOne, withDaemon } from "./reference.js";

const { session } = withDaemon();

const BIG = 123456789012345678901234567890n;

test("a bigint goes in and comes back exact", async () => {
  const lua = await session();
  await lua.setInput({ n: BIG, neg: -BIG, u: 18446744073709551615n, small: 5n });
  const { values } = await lua.compute(
    "local i = _io.input return i.n * 2, i.neg, i.u + 1, i.small, bigint.isbigint(i.n), bigint.new(7)",
  );
  // A bigint Lua made stays a bigint even when it fits 64 bits (ext 1).
  assert.deepEqual(values, [2n * BIG, -BIG, 18446744073709551616n, 5, true, 7n]);
  await lua.compute("_io.output = { sum = _io.input.n + _io.input.neg + 1 }");
  assert.deepEqual(await lua.getOutput(), { sum: 1n });
});

test("functions come back as LuaFunction and go in as ext 2", async () => {
  const lua = await session();
  const back = await evalOne(lua, "return function(x, y) return x .. y end");
  assert.ok(back instanceof LuaFunction);
  assert.equal(back.source, "function(x, y) return x .. y end");
  await lua.setInput({ triple: new LuaFunction("function(a) return a * 3 end") });
  assert.equal(await evalOne(lua, "return _io.input.triple(14)"), 42);
  // Not a function expression: refused, nothing stored.
  const e = await failure(lua.setInput({ bad: new LuaFunction("os.exit()") }));
  assert.ok(e instanceof BadRequestError, String(e));
  assert.match(e.message, /not a function expression/);
  assert.equal(await evalOne(lua, "return _io.input.triple(1)"), 3);
});

test("a function stored in _home is called by a later compute and another session", async () => {
  const home = `js-greet-${process.pid}`;
  const a = await session(home);
  await a.compute('_home.greet = function(name) return "hi " .. name end');
  const b = await session(home);
  assert.equal(await evalOne(b, 'return _home.greet("x")'), "hi x");
  // Upvalues are refused, naming the key and the upvalue.
  const e = await failure(b.compute("local up = 1 _home.bad = function() return up end"));
  assert.ok(e instanceof LuaError);
  assert.match(e.message, /key 'bad'.*'up'/);
});

test("a function and a bigint in a durable home survive a daemon restart", async () => {
  const data = mkdtempSync(join(tmpdir(), "luapool-js-data-"));
  try {
    let d = await Daemon.start(["--data", join(data, "homes")]);
    let c = await d.client();
    let s = await c.session({ home: "h" });
    await s.compute("_home.sq = function(x) return x * x end _home.big = bigint.new(2):pow(80)");
    await c.close();
    assert.equal(await d.stop("SIGKILL"), null);
    d = await Daemon.start(["--data", join(data, "homes")]);
    c = await d.client();
    s = await c.session({ home: "h" });
    const { values } = await s.compute("return _home.sq(12), _home.big");
    assert.deepEqual(values, [144, 2n ** 80n]);
    await c.close();
    assert.equal(await d.stop(), 0);
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
});
