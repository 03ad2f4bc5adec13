/**
 * The codec without a daemon: frames cut from a byte stream, the ext types
 * (1 big integer, 2 Lua function, anything else an error), 64-bit integers,
 * the values refused before sending, and error classes by kind.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { encode as rawEncode } from "@msgpack/msgpack";
import {
  BusyError,
  decode,
  DecodeError,
  encode,
  fromWire,
  InvalidValueError,
  LuaError,
  LuaFunction,
  LuapoolError,
  MAX_BIGINT_DIGITS,
  MAX_DEPTH,
  prepare,
  TimeoutError,
  UnknownSessionError,
} from "../src/index.js";
import { Frames } from "../src/frames.js";

const send = (v: unknown) => encode(prepare(v, "input"));
const roundTrip = (v: unknown) => decode(send(v));
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

// ---------------------------------------------------------------- frames

test("frames: messages fed one byte at a time come out whole and in order", () => {
  const messages: unknown[] = [
    [1, 7, null, { values: ["x".repeat(70_000)], logs: [] }],
    [2, "log", [1, 7, "a line"]],
    [1, 4_000_000_000, null, [1, [2, [3, {}]], new Uint8Array(300)]],
    [1, 8, null, 5_000_000_000],
  ];
  const stream = Buffer.concat(messages.map((m) => Buffer.from(rawEncode(m))));
  const frames = new Frames();
  const got: [unknown, boolean][] = [];
  for (const byte of stream) {
    frames.push(Uint8Array.of(byte));
    for (let f = frames.next(); f; f = frames.next()) got.push([decode(f.bytes, f.wide), f.wide]);
  }
  assert.deepEqual(
    got.map(([m]) => m),
    messages,
  );
  // Only the message holding a 64-bit integer is marked wide.
  assert.deepEqual(
    got.map(([, wide]) => wide),
    [false, false, false, true],
  );
});

test("frames: many messages in one chunk, and a chunk larger than the buffer", () => {
  const big = [1, 1, null, "y".repeat(300_000)];
  const bytes = Buffer.concat([rawEncode([1, 2, null, 3]), rawEncode(big), rawEncode([2, "log", [1, 2, "z"]])]);
  const frames = new Frames();
  frames.push(bytes.subarray(0, 10));
  frames.push(bytes.subarray(10));
  const out = [];
  for (let f = frames.next(); f; f = frames.next()) out.push(decode(f.bytes, f.wide));
  assert.deepEqual(out, [[1, 2, null, 3], big, [2, "log", [1, 2, "z"]]]);
  assert.equal(frames.next(), null);
});

test("frames: the byte 0xc1 is not MessagePack", () => {
  const frames = new Frames();
  frames.push(Uint8Array.of(0x92, 0x01, 0xc1));
  assert.throws(() => frames.next(), /0xc1/);
});

// ---------------------------------------------------------------- integers

test("a bigint inside the signed 64-bit range is a plain int; outside it is ext 1", () => {
  for (const v of [0n, 5n, -5n, 2n ** 53n + 1n, 2n ** 63n - 1n, -(2n ** 63n)]) {
    const bytes = send(v);
    assert.ok(bytes[0] === 0xcf || bytes[0] === 0xd3, `${v} as ${hex(bytes)}`);
    const back = decode(bytes);
    assert.equal(BigInt(back as number | bigint), v);
  }
  for (const v of [2n ** 63n, 2n ** 64n, -(2n ** 63n) - 1n, 10n ** 40n, -(10n ** 40n)]) {
    const bytes = send(v);
    const text = v.toString();
    // ext 8 (0xc7), the payload's length, type 1, then the ASCII digits.
    assert.equal(hex(bytes), Buffer.from([0xc7, text.length, 0x01, ...Buffer.from(text)]).toString("hex"));
    assert.equal(decode(bytes), v);
  }
});

test("ext 1 decodes to a BigInt; a payload that is not a decimal integer is an error", () => {
  const ext = (payload: string) => Uint8Array.from([0xc7, payload.length, 0x01, ...Buffer.from(payload)]);
  assert.equal(decode(ext("-123456789012345678901234567890")), -123456789012345678901234567890n);
  assert.equal(decode(ext("42")), 42n);
  assert.equal(decode(ext("42"), false), 42n);
  // Next to a 64-bit int (exact decoding), ext 1 still stays a BigInt.
  const withWide = Uint8Array.from([0x92, 0xcf, 0, 0, 0, 0, 0, 0, 0, 9, ...ext("7")]);
  assert.deepEqual(decode(withWide), [9, 7n]);
  for (const bad of ["12a", "", "-", "+1", " 1"]) {
    assert.throws(() => decode(ext(bad)), (e: unknown) => e instanceof DecodeError && /ext type 1/.test(e.message), bad);
  }
});

test("64-bit integers from the daemon are numbers when safe, bigints otherwise", () => {
  const u64 = (v: bigint) => Uint8Array.from([0xcf, ...Buffer.from(v.toString(16).padStart(16, "0"), "hex")]);
  assert.equal(decode(u64(5_000_050_000n)), 5_000_050_000);
  assert.equal(decode(u64(2n ** 53n - 1n)), Number.MAX_SAFE_INTEGER);
  assert.equal(decode(u64(2n ** 53n + 1n)), 2n ** 53n + 1n);
  assert.equal(decode(u64(2n ** 64n - 1n)), 2n ** 64n - 1n);
  assert.deepEqual(roundTrip({ a: [-(2n ** 63n), -5n], b: 9n }), { a: [-(2n ** 63n), -5], b: 9 });
});

// ---------------------------------------------------------------- Lua functions

test("a LuaFunction is ext 2 holding its source, both ways", () => {
  const f = new LuaFunction("return function(x) return x * 2 end -- é");
  const bytes = send({ f, list: [f] });
  assert.ok(Buffer.from(bytes).includes(Buffer.from(f.source)));
  const back = decode(bytes) as { f: LuaFunction; list: LuaFunction[] };
  assert.ok(back.f instanceof LuaFunction);
  assert.equal(back.f.source, f.source);
  assert.equal(back.list[0].source, f.source);
  // ext 2 with bytes that are not UTF-8 is refused.
  assert.throws(() => decode(Uint8Array.of(0xd4, 0x02, 0xff)), DecodeError);
});

test("any other ext type is an error that names the type", () => {
  for (const [type, bytes] of [
    [5, [0xd4, 0x05, 0x00]],
    [0, [0xd5, 0x00, 0x01, 0x02]],
    [127, [0xc7, 0x01, 0x7f, 0x00]],
    [-1, [0xd6, 0xff, 0, 0, 0, 0]], // the MessagePack timestamp
  ] as const) {
    assert.throws(
      () => decode(Uint8Array.from(bytes)),
      (e: unknown) => e instanceof DecodeError && e.message.includes(`ext type ${type}`),
      `type ${type}`,
    );
  }
});

// ---------------------------------------------------------------- refused before sending

test("values that cannot cross the wire are refused, naming where they are", () => {
  class Point {
    x = 1;
  }
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = { back: cyclic };
  const cases: [unknown, RegExp][] = [
    [{ f: () => 1 }, /input\.f: a function/],
    [{ items: [1, { s: Symbol("x") }] }, /input\.items\[1\]\.s: a symbol/],
    [[1, undefined, 3], /input\[1\]: undefined in an array/],
    [[1, , 3], /input\[1\]: undefined in an array/], // eslint-disable-line no-sparse-arrays
    [cyclic, /input\.self\.back: a cycle/],
    [{ when: new Date() }, /input\.when: a Date cannot cross/],
    [{ m: new Map([[NaN, 1]]) }, /input\.m: a Map cannot cross/],
    [new Set([1]), /input: a Set cannot cross/],
    [{ p: new Point() }, /input\.p: a Point cannot cross/],
    [{ "odd key": new Float64Array(2) }, /input\["odd key"\]: a Float64Array cannot cross/],
    [new ArrayBuffer(4), /an ArrayBuffer cannot cross/],
    // UTF-8 cannot hold a lone surrogate: it would arrive as other bytes.
    [{ s: "a\ud800b" }, /input\.s: a string with a lone surrogate/],
    [["x".repeat(100) + "\udc00"], /input\[0\]: a string with a lone surrogate/],
    [{ ["k\udc00"]: 1 }, /input\["k\\udc00"\]: its key: a string with a lone surrogate/],
    [{ f: new LuaFunction("function() return '\ud83d' end") }, /input\.f: its source: a string with a lone/],
    [{ f: new LuaFunction("function() return 'a\0b' end") }, /input\.f: its source holds a NUL byte/],
    [{ n: 10n ** 78913n }, /input\.n: a bigint of 78914 digits is over the daemon's limit of 78913 digits/],
    [[-(10n ** 78913n)], /input\[0\]: a bigint of 78914 digits/],
  ];
  for (const [value, message] of cases) {
    assert.throws(
      () => prepare(value, "input"),
      (e: unknown) => e instanceof InvalidValueError && e.kind === "InvalidValue" && message.test(e.message),
      String(message),
    );
  }
});

test("the longest bigint the daemon takes and well-formed strings are sent", () => {
  const big = 10n ** BigInt(MAX_BIGINT_DIGITS) - 1n;
  assert.deepEqual(decode(send([big, -big])), [big, -big]);
  assert.deepEqual(decode(send({ "emoji 😀": "😀 and é" })), { "emoji 😀": "😀 and é" });
});

test("nesting past the daemon's limit is refused; up to it is sent", () => {
  const nest = (n: number) => {
    let v: unknown = 1;
    for (let i = 0; i < n; i++) v = [v];
    return v;
  };
  assert.doesNotThrow(() => send(nest(MAX_DEPTH)));
  assert.throws(() => prepare(nest(MAX_DEPTH + 1), "input"), /nested more than 500 levels/);
});

test("shared references, bytes, null prototypes and undefined fields are fine", () => {
  const shared = { id: 1 };
  assert.deepEqual(roundTrip([shared, shared, { shared }]), [shared, shared, { shared }]);
  const bytes = Buffer.from([0, 255, 7]);
  assert.deepEqual(roundTrip({ b: bytes }), { b: new Uint8Array([0, 255, 7]) });
  const bare = Object.assign(Object.create(null), { k: "v" });
  assert.deepEqual(roundTrip(bare), { k: "v" });
  assert.deepEqual(send({ a: 1, gone: undefined }), send({ a: 1 }));
  assert.deepEqual(roundTrip([null, NaN, Infinity, 1.5, "é"]), [null, NaN, Infinity, 1.5, "é"]);
  // An integral number is an integer on the wire: -0 arrives as 0.
  assert.equal(roundTrip(-0), 0);
});

test("prepare copies only what it changes", () => {
  const plain = { a: [1, 2], b: { c: "d" } };
  assert.equal(prepare(plain, "input"), plain);
  const withBig = { a: [1, 2n ** 70n], b: { c: "d" } };
  const out = prepare(withBig, "input") as typeof withBig;
  assert.notEqual(out, withBig);
  assert.equal(out.b, withBig.b);
  assert.equal(withBig.a[1], 2n ** 70n, "the caller's value is untouched");
});

// ---------------------------------------------------------------- errors

test("each error kind has its class, carrying kind and the daemon's fields", () => {
  const lua = fromWire({ kind: "LuaError", message: "x.lua:3: boom", traceback: "stack traceback:\n..." });
  assert.ok(lua instanceof LuaError && lua instanceof LuapoolError && lua instanceof Error);
  assert.equal(lua.kind, "LuaError");
  assert.equal(lua.name, "LuaError");
  assert.equal(lua.message, "x.lua:3: boom");
  assert.equal((lua as LuaError).traceback, "stack traceback:\n...");
  assert.ok(fromWire({ kind: "Timeout", message: "t" }) instanceof TimeoutError);
  assert.ok(fromWire({ kind: "Busy", message: "b" }) instanceof BusyError);
  assert.ok(fromWire({ kind: "UnknownSession", message: "u" }) instanceof UnknownSessionError);
  const future = fromWire({ kind: "SomethingNew", message: "later", extra: 1 });
  assert.equal(future.constructor, LuapoolError);
  assert.equal(future.kind, "SomethingNew");
  assert.equal(future.details.extra, 1);
  const odd = fromWire("not a map");
  assert.equal(odd.kind, "Unknown");
});
