/**
 * `stats()` through the client, against a real daemon: wait and run time
 * percentiles and errors by kind (a client its own, the operator the whole
 * daemon's), and each worker's state on the operator's socket.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { LuaError, type WorkerState } from "../src/index.js";
import { Daemon, eventually, failure } from "./daemon.js";

test("stats carry wait and run percentiles, errors by kind, and the operator each worker's state", async () => {
  const d = await Daemon.start();
  const c = await d.client();
  const op = await d.operator();
  try {
    const s = await c.session();
    for (let i = 0; i < 3; i++) await s.compute("return 1");
    assert.ok((await failure(s.compute("error('x')"))) instanceof LuaError);

    const mine = await c.stats();
    assert.equal(mine.scope, "connection");
    assert.deepEqual([mine.wait.count, mine.run.count], [4, 4]);
    for (const l of [mine.wait, mine.run]) {
      assert.ok(l.p50_us <= l.p90_us && l.p90_us <= l.p99_us && l.p50_us <= l.sum_us, JSON.stringify(l));
    }
    assert.equal(mine.errors.LuaError, 1);
    assert.equal(mine.errors.Timeout, 0);
    assert.equal(mine.worker_states, undefined, "workers are the operator's");

    const all = await op.stats();
    assert.equal(all.scope, "daemon");
    assert.deepEqual([all.run.count, all.errors.LuaError], [4, 1]);
    assert.equal(all.worker_states?.length, 2);

    // A worker running a compute says so, and for how long.
    const started = new Promise<void>((r) => s.once("log", () => r()));
    const running = failure(s.compute("print('started') while true do end", { timeoutMs: 60_000 }));
    await started;
    let busy: WorkerState | undefined;
    await eventually("a worker is seen running", async () => {
      busy = (await op.stats()).worker_states?.find((w) => w.state === "running");
      return busy !== undefined;
    });
    assert.ok(busy?.state === "running" && busy.for_ms >= 0, JSON.stringify(busy));
    await s.cancel();
    assert.equal((await running).kind, "Cancelled");
    await eventually("both workers idle again", async () =>
      (await op.stats()).worker_states?.every((w) => w.state === "idle") === true,
    );
    assert.equal((await op.stats()).errors.Cancelled, 1);
  } finally {
    await op.close();
    await c.close();
    assert.equal(await d.stop(), 0);
  }
});
