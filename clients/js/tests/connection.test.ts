/**
 * The connection, against real daemons: connecting where nobody listens,
 * pipelining, print lines routed to their compute, a daemon that goes away
 * mid-call, values refused before sending, replies that cannot be decoded,
 * and TCP with a token.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import {
  ConnectFailedError,
  ConnectionClosedError,
  connect,
  DecodeError,
  InvalidValueError,
  UnauthorizedError,
  type LuapoolError,
} from "../src/index.js";
import { Daemon, eventually, failure, HANG_MS } from "./daemon.js";
import { withDaemon } from "./reference.js";

const { session, client, daemon } = withDaemon();

test("connecting to a missing socket says so at connect", async () => {
  const path = join(daemon().dir, "nobody-here.sock");
  await assert.rejects(connect(path), (e: unknown) => {
    assert.ok(e instanceof ConnectFailedError);
    assert.equal(e.kind, "ConnectFailed");
    assert.ok(e.message.includes(path), e.message);
    assert.match(e.message, /no such socket/);
    return true;
  });
});

test("many calls in flight on many sessions each get their own reply", async () => {
  const sessions = await Promise.all([1, 2, 3, 4].map(() => session()));
  const calls: Promise<[number, number, unknown]>[] = [];
  sessions.forEach((s, k) => {
    // Each session's calls run in order: set, compute, read back, all pipelined.
    for (let i = 0; i < 25; i++) {
      void s.setInput({ k, i });
      calls.push(
        s.compute("return _io.input.k * 1000 + _io.input.i").then((r) => [k, i, r.values[0]]),
      );
    }
  });
  for (const [k, i, got] of await Promise.all(calls)) assert.equal(got, k * 1000 + i);
  const last = await Promise.all(sessions.map((s) => s.getOutput()));
  assert.deepEqual(last, [null, null, null, null]);
});

test("print lines reach the compute that printed them, in order, as they run", async () => {
  const [a, b, quiet] = [await session(), await session(), await session()];
  const seen = { a: [] as string[], b: [] as string[], aEvents: [] as string[], quietEvents: 0 };
  a.on("log", (line: string) => seen.aEvents.push(line));
  quiet.on("log", () => seen.quietEvents++);
  const printer = (tag: string) => `for i = 1, 50 do print("${tag}" .. i) end return "${tag}"`;
  const want = (tag: string) => Array.from({ length: 50 }, (_, i) => `${tag}${i + 1}`);
  const [ra, rb, rq] = await Promise.all([
    a.compute(printer("A"), { onLog: (l) => seen.a.push(l) }),
    b.compute(printer("B"), { onLog: (l) => seen.b.push(l) }),
    quiet.compute(printer("Q"), { streamLogs: false }),
  ]);
  assert.deepEqual([ra.values, rb.values, rq.values], [["A"], ["B"], ["Q"]]);
  assert.deepEqual(seen.a, want("A"));
  assert.deepEqual(seen.aEvents, want("A"));
  assert.deepEqual(seen.b, want("B"));
  assert.deepEqual(ra.logs, want("A"));
  // Without streaming, the lines come only with the result.
  assert.equal(seen.quietEvents, 0);
  assert.deepEqual(rq.logs, want("Q"));
  // A line is delivered before its compute's reply.
  let beforeReply = false;
  await a.compute('print("first") return 1', { onLog: () => (beforeReply = true) });
  assert.ok(beforeReply);
});

test("a log listener that throws fails its compute after it ran, and nothing else", async () => {
  const s = await session();
  const lines: string[] = [];
  const e = await failure(
    s.compute("print('x') print('y') _io.output = 'ran'", {
      onLog: (line) => {
        lines.push(line);
        throw new Error("a bug in the listener");
      },
    }),
  );
  assert.equal(e.message, "a bug in the listener");
  assert.deepEqual(lines, ["x"]);
  assert.equal(await s.getOutput(), "ran");
});

test("a value refused before sending leaves the connection and session working", async () => {
  const s = await session();
  await s.setInput({ kept: true });
  await assert.rejects(s.setInput({ f: () => 1 }), InvalidValueError);
  await assert.rejects(s.setInputField("x", [1, undefined]), /input field "x"\[1\]: undefined/);
  await assert.rejects(s.setMetadata({ when: new Date() }), /metadata\.when: a Date/);
  await assert.rejects(s.setInput({ s: "\ud800" }), /input\.s: a string with a lone surrogate/);
  await assert.rejects(s.setInputField("k\ud800", 1), /the field key: a string with a lone surrogate/);
  await assert.rejects(s.compute("return '\udc00'"), /the code: a string with a lone surrogate/);
  await assert.rejects(s.setInput(10n ** 80_000n), /input: a bigint of 80001 digits/);
  await assert.rejects(s.compute("return 1", { timeout: 5 } as never), /unknown compute option "timeout"/);
  await assert.rejects(s.getOutputField(7 as never), /key must be a string/);
  // Nothing was sent: the input is still the last one that was.
  assert.deepEqual((await s.compute("return _io.input.kept")).values, [true]);
});

test("a reply this client cannot decode fails that call only", async () => {
  const s = await session();
  await s.compute("_io.output = { __proto__ = 1 }");
  await assert.rejects(s.getOutput(), (e: unknown) => e instanceof DecodeError && /__proto__/.test(e.message));
  assert.deepEqual((await s.compute("return 2")).values, [2]);
  assert.equal(client().closed, false);
});

// A hang fails the test instead of stalling the run.
test("closing the client fails the calls still waiting, and every later call", { timeout: 2 * HANG_MS }, async () => {
  const c = await connect(daemon().socket);
  const s = await c.session();
  const started = new Promise<void>((r) => s.once("log", () => r()));
  const running = failure(s.compute("print('started') while true do end", { timeoutMs: 60_000 }));
  await started;
  await c.close();
  const e = await running;
  assert.ok(e instanceof ConnectionClosedError, String(e));
  assert.match(e.message, /\(the client closed it\); 1 call was waiting/);
  await assert.rejects(s.getOutput(), ConnectionClosedError);
  await assert.rejects(c.session(), ConnectionClosedError);
  assert.equal(c.closed, true);
});

// A hang fails the test instead of stalling the run.
test("a daemon killed mid-call fails every waiting call with ConnectionClosed, never a hang", { timeout: 2 * HANG_MS }, async () => {
  const d = await Daemon.start();
  const c = await connect(d.socket);
  let closeEvent: LuapoolError | undefined;
  c.on("close", (e: LuapoolError) => (closeEvent = e));
  const [s1, s2] = [await c.session(), await c.session()];
  const started = new Promise<void>((r) => s1.once("log", () => r()));
  const calls = [
    s1.compute("print('started') while true do end", { timeoutMs: 60_000 }),
    s1.getOutput(), // behind the compute in s1's order
    s2.compute("while true do end", { timeoutMs: 60_000 }),
  ].map(failure);
  await started;
  await d.stop("SIGKILL");
  for (const e of await Promise.all(calls)) {
    assert.ok(e instanceof ConnectionClosedError, String(e));
    assert.equal(e.kind, "ConnectionClosed");
    assert.match(e.message, /connection to the luapool daemon closed.*3 calls were waiting/);
  }
  await assert.rejects(s2.setInput(1), ConnectionClosedError);
  await eventually("the client reports the close", () => closeEvent instanceof ConnectionClosedError);
});

test("on SIGTERM a running compute finishes, then the connection closes", async () => {
  const d = await Daemon.start();
  const c = await connect(d.socket);
  const s = await c.session();
  const started = new Promise<void>((r) => s.once("log", () => r()));
  const running = s.compute("print('started') local t = os.clock() while os.clock() - t < 0.3 do end return 'done'");
  await started;
  const exited = d.stop("SIGTERM");
  assert.deepEqual((await running).values, ["done"]);
  assert.equal(await exited, 0);
  await eventually("the client sees the close", () => c.closed);
  await assert.rejects(s.compute("return 1"), ConnectionClosedError);
});

test("TCP with the daemon's token works; a wrong token is Unauthorized", async () => {
  const d = await Daemon.start(["--tcp", "127.0.0.1:0", "--token", "sekrit"]);
  try {
    await eventually("the daemon says its TCP address", () => /listening on tcp /.test(d.stderr));
    const port = Number(/listening on tcp 127\.0\.0\.1:(\d+)/.exec(d.stderr)![1]);
    const c = await connect({ host: "127.0.0.1", port, token: "sekrit" });
    const s = await c.session();
    assert.deepEqual((await s.compute("return 1 + 1")).values, [2]);
    await c.close();
    await assert.rejects(connect({ host: "127.0.0.1", port, token: "wrong" }), UnauthorizedError);
  } finally {
    assert.equal(await d.stop(), 0);
  }
});
