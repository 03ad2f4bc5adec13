/**
 * Managing durable homes through a real daemon with a data directory:
 * listHomes (operator's socket), exportHome, importHome, dropHome, their
 * error classes, and the limits' own classes.
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  HomeInUseError,
  HomeNotFoundError,
  LimitReachedError,
  OperatorOnlyError,
  TimeoutError,
  TooManyHomesError,
} from "../src/index.js";
import { Daemon, failure } from "./daemon.js";

test("homes are listed, exported, imported and dropped, durably", async () => {
  const data = mkdtempSync(join(tmpdir(), "luapool-js-data-"));
  let d = await Daemon.start(["--data", join(data, "homes")]);
  try {
    const c = await d.client();
    const op = await d.operator();
    const a = await c.session({ home: "a" });
    await a.compute("_home.users = {{name = 'ann'}} _home.n = 1");
    const b = await c.session({ home: "b" });
    await b.compute("_home.x = true");
    const listed = await op.listHomes();
    assert.deepEqual(listed.map((h) => [h.name, h.sessions, h.loaded]), [["a", 1, true], ["b", 1, true]]);
    assert.ok(listed[0].bytes > 0);
    // Only the operator sees every home's name.
    const refused = await failure(c.listHomes());
    assert.ok(refused instanceof OperatorOnlyError, String(refused));
    assert.equal(refused.kind, "OperatorOnly");

    assert.deepEqual(await c.exportHome("a"), { users: [{ name: "ann" }], n: 1 });
    const backup = { n: 41, restored: [1, 2] };
    assert.ok((await failure(c.importHome("a", backup))) instanceof HomeInUseError);
    assert.ok((await failure(c.dropHome("b"))) instanceof HomeInUseError);
    await a.close();
    await b.close();
    await c.importHome("a", backup);
    assert.equal(await c.dropHome("b"), true);
    assert.equal(await c.dropHome("b"), false);
    assert.ok((await failure(c.exportHome("b"))) instanceof HomeNotFoundError);
    await op.close();
    await c.close();
    assert.equal(await d.stop(), 0);

    // A new daemon on the directory finds the import and not the dropped home.
    d = await Daemon.start(["--data", join(data, "homes")]);
    const op2 = await d.operator();
    assert.deepEqual((await op2.listHomes()).map((h) => h.name), ["a"]);
    const c2 = await d.client();
    const s = await c2.session({ home: "a" });
    const { values } = await s.compute("_home.n = _home.n + 1 return _home.n, _home.restored[2]");
    assert.deepEqual(values, [42, 2]);
    await op2.close();
    await c2.close();
  } finally {
    await d.stop();
    rmSync(data, { recursive: true, force: true });
  }
});

test("limits have their own classes: TooManyHomes, LimitReached, and cpuTimeMs is a Timeout", async () => {
  const d = await Daemon.start(["--max-homes", "1", "--max-sessions-per-connection", "2"]);
  try {
    const c = await d.client();
    await c.importHome("one", { k: 1 });
    const many = await failure(c.importHome("two", { k: 2 }));
    assert.ok(many instanceof TooManyHomesError, String(many));
    assert.equal(many.details.limit, "max_homes");
    const s = await c.session();
    await c.session();
    const limit = await failure(c.session());
    assert.ok(limit instanceof LimitReachedError, String(limit));
    assert.equal(limit.limit, "sessions_per_connection");
    assert.equal(limit.value, 2);
    const cpu = await failure(s.compute("while true do end", { cpuTimeMs: 50, instructions: 0 }));
    assert.ok(cpu instanceof TimeoutError, String(cpu));
    assert.match(cpu.message, /CPU-time limit/);
    await c.close();
  } finally {
    assert.equal(await d.stop(), 0);
  }
});
