/**
 * Every error kind a real daemon can be made to send arrives as its own
 * class carrying `kind`, and the connection goes on afterwards.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  BadRequestError,
  BusyError,
  CancelledError,
  connect,
  LuaError,
  LuapoolError,
  MemoryLimitError,
  StoreError,
  TimeoutError,
  UnknownMethodError,
  UnknownSessionError,
  WorkerCrashedError,
} from "../src/index.js";
import { Daemon, eventually, failure } from "./daemon.js";
import { withDaemon } from "./reference.js";

const { session, client } = withDaemon();

test("a Lua error carries the chunk name, line and traceback", async () => {
  const s = await session();
  const e = await failure(s.compute("local x = 1\nerror('boom')", { chunkName: "@job.lua" }));
  assert.ok(e instanceof LuaError);
  assert.equal(e.kind, "LuaError");
  assert.equal(e.message, "job.lua:2: boom");
  assert.match(e.traceback, /stack traceback:[\s\S]*job\.lua:2/);
  // A syntax error is a LuaError too.
  assert.ok((await failure(s.compute("return +"))) instanceof LuaError);
  assert.deepEqual((await s.compute("return 'still fine'")).values, ["still fine"]);
});

test("the wall-clock limit and the instruction budget are Timeout", async () => {
  const s = await session();
  const wall = await failure(s.compute("while true do end", { timeoutMs: 200, instructions: 0 }));
  assert.ok(wall instanceof TimeoutError, String(wall));
  assert.equal(wall.kind, "Timeout");
  const budget = await failure(s.compute("while true do end", { instructions: 100_000 }));
  assert.ok(budget instanceof TimeoutError, String(budget));
  assert.deepEqual((await s.compute("return 1")).values, [1]);
});

test("the Lua heap limit is MemoryLimit", async () => {
  const s = await session();
  const e = await failure(s.compute("local t = {} for i = 1, 1e8 do t[i] = i end", { memory: 8 << 20 }));
  assert.ok(e instanceof MemoryLimitError, String(e));
  assert.equal(e.kind, "MemoryLimit");
});

test("cancel stops the running compute and the ones queued behind it", async () => {
  const s = await session();
  const started = new Promise<void>((r) => s.once("log", () => r()));
  const running = failure(s.compute("print('started') while true do end", { timeoutMs: 60_000 }));
  const queued = failure(s.compute("return 'queued'"));
  await started;
  await s.cancel();
  for (const e of await Promise.all([running, queued])) {
    assert.ok(e instanceof CancelledError, String(e));
    assert.equal(e.kind, "Cancelled");
  }
  assert.deepEqual((await s.compute("return 'after'")).values, ["after"]);
});

test("input nested deeper than the store takes is a StoreError", async () => {
  const s = await session();
  let v: unknown = 1;
  for (let i = 0; i < 300; i++) v = [v];
  const e = await failure(s.setInput(v));
  assert.ok(e instanceof StoreError, String(e));
  assert.match(e.message, /nested more than 256 deep/);
});

test("protocol errors: BadRequest, UnknownMethod, UnknownSession", async () => {
  const s = await session();
  const bad = await failure(s.compute("return 1", { timeoutMs: 0 }));
  assert.ok(bad instanceof BadRequestError, String(bad));
  assert.match(bad.message, /timeout_ms/);
  const unknown = await failure(client().call("no.such.method", []));
  assert.ok(unknown instanceof UnknownMethodError, String(unknown));
  await s.close();
  const gone = await failure(s.getOutput());
  assert.ok(gone instanceof UnknownSessionError, String(gone));
  assert.ok(gone instanceof LuapoolError && gone instanceof Error);
  // The connection is fine after all of them.
  assert.deepEqual((await (await session()).compute("return 3")).values, [3]);
});

test("a full queue is Busy, and a worker killed mid-compute is WorkerCrashed", async () => {
  const d = await Daemon.start(["--workers", "1", "--queue", "1"]);
  const c = await connect(d.socket);
  const op = await d.operator();
  try {
    const [s1, s2, s3] = [await c.session(), await c.session(), await c.session()];
    const started = new Promise<void>((r) => s1.once("log", () => r()));
    const running = failure(s1.compute("print('started') while true do end", { timeoutMs: 60_000 }));
    await started;
    const queued = failure(s2.compute("return 'queued'"));
    await eventually("the second compute waits in the queue", async () => (await op.stats()).queued === 1);
    const busy = await failure(s3.compute("return 'no room'"));
    assert.ok(busy instanceof BusyError, String(busy));
    assert.equal(busy.kind, "Busy");
    await s2.cancel();
    assert.ok((await queued) instanceof CancelledError);

    // The one worker runs s1's loop: kill it.
    const [worker] = d.workerPids();
    process.kill(worker, "SIGKILL");
    const crashed = await running;
    assert.ok(crashed instanceof WorkerCrashedError, String(crashed));
    assert.equal(crashed.kind, "WorkerCrashed");
    // The daemon replaced the worker. (The cancelled compute keeps its queue
    // place until a worker takes it off: wait for that, or this is Busy.)
    await eventually("the queue empties", async () => (await op.stats()).queued === 0);
    assert.deepEqual((await s3.compute("return 'again'")).values, ["again"]);
    assert.equal((await op.stats()).restarts, 1);
  } finally {
    await op.close();
    await c.close();
    assert.equal(await d.stop(), 0);
  }
});
