/**
 * The reference (io-table-api.md), part 1: Quick Start, the JavaScript API
 * reference and the Lua API reference, with the outputs it states, through
 * a real daemon. Mirrors tests/tests/reference.rs.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { LuaError } from "../src/index.js";
import { exampleJson } from "./daemon.js";
import { evalOne, runExample, withDaemon } from "./reference.js";

const { session } = withDaemon();

// ---------------------------------------------------------------- Quick Start

test("quick start greets Alice and returns success", async () => {
  const lua = await session();
  await lua.setInput({ user: { id: 123, name: "Alice", age: 30 } });
  const result = await runExample(lua, "quick_start.lua");
  assert.deepEqual(result.values, ["success"]);
  assert.deepEqual(await lua.getOutput(), { message: "Hello, Alice", isAdult: true, userId: 123 });
});

test("quick start's example input file matches the reference", async () => {
  const lua = await session();
  await lua.setInput(exampleJson("quick_start.json"));
  await runExample(lua, "quick_start.lua");
  assert.deepEqual(await lua.getOutput(), { message: "Hello, Alice", isAdult: true, userId: 123 });
});

test("processing arrays sums and counts", async () => {
  const lua = await session();
  await lua.setInput({ numbers: [1, 2, 3, 4, 5] });
  await lua.compute(`
  local sum = 0
  for i, n in ipairs(_io.input.numbers) do
    sum = sum + n
  end
  
  _io.output = { sum = sum, count = #_io.input.numbers }
`);
  assert.deepEqual(await lua.getOutput(), { sum: 15, count: 5 });
  assert.deepEqual(exampleJson("processing_arrays.json"), { numbers: [1, 2, 3, 4, 5] });
  await runExample(lua, "processing_arrays.lua");
  assert.deepEqual(await lua.getOutput(), { sum: 15, count: 5 });
});

// ------------------------------------------------------- JavaScript API: host

test("getIoTableId is stable per session and distinct across sessions", async () => {
  const [a, b] = [await session(), await session()];
  const ioId = await a.getIoTableId();
  assert.equal(typeof ioId, "number");
  assert.equal(await a.getIoTableId(), ioId);
  assert.notEqual(await b.getIoTableId(), ioId);
  assert.equal((await a.getTableInfo()).io, ioId);
  await a.setInput({ x: 1 });
  await a.compute("_io.output = _io.input.x");
  await a.clearIo();
  assert.equal(await a.getIoTableId(), ioId);
});

test("setInput of a simple object", async () => {
  const lua = await session();
  await lua.setInput({ message: "Hello", value: 42, flag: true });
  const v = await evalOne(lua, "local i = _io.input return { i.message, math.type(i.value), i.value, i.flag, type(i) }");
  assert.deepEqual(v, ["Hello", "integer", 42, true, "table"]);
});

test("setInput of a nested structure", async () => {
  const lua = await session();
  await lua.setInput({
    user: { name: "Alice", address: { city: "NYC", zip: "10001" } },
    items: [
      { id: 1, name: "Item 1" },
      { id: 2, name: "Item 2" },
    ],
  });
  const v = await evalOne(
    lua,
    "local i = _io.input return { i.user.name, i.user.address.city, i.user.address.zip, #i.items, i.items[1].id, i.items[2].name }",
  );
  assert.deepEqual(v, ["Alice", "NYC", "10001", 2, 1, "Item 2"]);
});

test("setInput of primitives, null and undefined", async () => {
  const lua = await session();
  const probe = "return { type(_io.input), _io.input, tostring(math.type(_io.input)) }";
  await lua.setInput("simple string");
  assert.deepEqual(await evalOne(lua, probe), ["string", "simple string", "nil"]);
  await lua.setInput(42);
  assert.deepEqual(await evalOne(lua, probe), ["number", 42, "integer"]);
  await lua.setInput(1.5);
  assert.deepEqual(await evalOne(lua, probe), ["number", 1.5, "float"]);
  await lua.setInput(true);
  assert.deepEqual(await evalOne(lua, probe), ["boolean", true, "nil"]);
  await lua.setInput(null);
  assert.equal(await evalOne(lua, "return type(_io.input)"), "nil");
  await lua.setInput(7);
  await lua.setInput(undefined);
  assert.equal(await evalOne(lua, "return _io.input == nil"), true);
});

test("setInput replaces the previous input", async () => {
  const lua = await session();
  await lua.setInput({ a: 1, b: 2 });
  await lua.setInput({ c: 3 });
  assert.deepEqual(await evalOne(lua, "return { _io.input.a == nil, _io.input.b == nil, _io.input.c }"), [true, true, 3]);
});

test("getOutput converts tables to objects and arrays", async () => {
  const lua = await session();
  await lua.compute(`
  _io.output = {
    result = "processed",
    count = 10,
    items = {1, 2, 3}
  }
`);
  assert.deepEqual(await lua.getOutput(), { result: "processed", count: 10, items: [1, 2, 3] });
  await runExample(lua, "get_output.lua");
  assert.deepEqual(await lua.getOutput(), { result: "processed", count: 10, items: [1, 2, 3] });
});

test("getOutput is null when the output was not set", async () => {
  const lua = await session();
  assert.equal(await lua.getOutput(), null);
  await lua.compute("local x = 1");
  assert.equal(await lua.getOutput(), null);
});

test("setInputField sets fields seen in Lua", async () => {
  const lua = await session();
  await lua.setInputField("userId", 123);
  await lua.setInputField("action", "update");
  await lua.setInputField("params", { limit: 10 });
  const v = await evalOne(
    lua,
    "return { _io.input.userId == 123, _io.input.action == 'update', _io.input.params.limit == 10 }",
  );
  assert.deepEqual(v, [true, true, true]);
});

test("setInputField creates the input table", async () => {
  const lua = await session();
  assert.equal(await evalOne(lua, "return _io.input == nil"), true);
  await lua.setInputField("only", "field");
  assert.deepEqual(await evalOne(lua, "return { type(_io.input), _io.input.only }"), ["table", "field"]);
  // A primitive input is not a table: the field goes into a new input table.
  await lua.setInput(42);
  await lua.setInputField("k", 1);
  assert.deepEqual(await evalOne(lua, "return { type(_io.input), _io.input.k }"), ["table", 1]);
});

test("setInputField keeps other fields, and the input is read-only in Lua", async () => {
  const lua = await session();
  await lua.setInput({ a: 1 });
  await lua.setInputField("b", { c: 2 });
  assert.deepEqual(await evalOne(lua, "return { _io.input.a, _io.input.b.c }"), [1, 2]);
  await assert.rejects(lua.compute("_io.input.b.c = 3"), (e: unknown) => {
    assert.ok(e instanceof LuaError);
    assert.match(e.message, /read-only/);
    assert.match(e.message, /'c'/);
    return true;
  });
});

test("getOutputField returns one field or null", async () => {
  const lua = await session();
  await lua.compute(`
  _io.output = {
    status = "ok",
    data = { huge = "dataset" },
    timestamp = 1234567890
  }
`);
  const status = await lua.getOutputField("status");
  assert.equal(status, "ok");
  assert.deepEqual(await lua.getOutputField("data"), { huge: "dataset" });
  assert.equal(await lua.getOutputField("timestamp"), 1234567890);
  assert.equal(await lua.getOutputField("missing"), null);
  await runExample(lua, "get_output_field.lua");
  assert.equal(await lua.getOutputField("status"), "ok");
});

test("getOutputField is null when the output is not a table", async () => {
  const lua = await session();
  assert.equal(await lua.getOutputField("status"), null);
  await lua.compute("_io.output = 'just a string'");
  assert.equal(await lua.getOutputField("status"), null);
});

test("setMetadata is readable and printed", async () => {
  const lua = await session();
  await lua.setMetadata({ requestId: "req-12345", timestamp: Date.now(), version: "1.0.0" });
  const printed: string[] = [];
  const result = await lua.compute(
    `
  print("Request ID: " .. _io.meta.requestId)
  -- Process data
`,
    { onLog: (line) => printed.push(line) },
  );
  assert.deepEqual(result.logs, ["Request ID: req-12345"]);
  assert.deepEqual(printed, ["Request ID: req-12345"]);
  await lua.setMetadata(exampleJson("set_metadata.meta.json"));
  assert.deepEqual((await runExample(lua, "set_metadata.lua")).logs, ["Request ID: req-12345"]);
});

test("setMetadata is separate from input and output", async () => {
  const lua = await session();
  await lua.setMetadata({ requestId: "req-1" });
  await lua.setInput({ requestId: "input" });
  await lua.compute("_io.output = { requestId = 'output' }");
  assert.deepEqual(await evalOne(lua, "return { _io.meta.requestId, _io.input.requestId }"), ["req-1", "input"]);
  assert.deepEqual(await lua.getOutput(), { requestId: "output" });
});

test("clearIo clears input, output and meta but not _home", async () => {
  const lua = await session();
  await lua.setInput({ data: "test" });
  await lua.setMetadata({ requestId: "r" });
  await lua.compute(`_io.output = { result = "done" }; _home.kept = 'yes'`);
  assert.deepEqual(await lua.getOutput(), { result: "done" });
  await lua.clearIo();
  // "_io.input, _io.output, and _io.meta are now nil" (the example wins over
  // the setMetadata note, as in the Rust client).
  assert.deepEqual(
    await evalOne(lua, "return { _io.input == nil, _io.output == nil, _io.meta == nil, _home.kept }"),
    [true, true, true, "yes"],
  );
  assert.equal(await lua.getOutput(), null);
});

// ------------------------------------------------------------ Lua API examples

test("the _io.input example reads nested fields and iterates", async () => {
  const lua = await session();
  await lua.setInput(exampleJson("lua_input.json"));
  const result = await runExample(lua, "lua_input.lua");
  assert.deepEqual(result.logs, ["1\tItem 1", "2\tItem 2", "Field exists"]);
  assert.deepEqual(await lua.getOutput(), { message: "Hello", count: 42, userName: "Alice", city: "NYC" });
});

test("_io.input is nil when no input was set", async () => {
  const lua = await session();
  assert.equal(await evalOne(lua, "return _io.input == nil"), true);
});

test("_io.output: the last assignment wins, and it can be built incrementally", async () => {
  const lua = await session();
  await lua.setInput(exampleJson("lua_input.json"));
  await runExample(lua, "lua_output.lua");
  assert.deepEqual(await lua.getOutput(), { count: 2 });
  await lua.compute(
    "_io.output = { results = { processed = 100, errors = 0 }, items = { {id = 1, status = 'done'}, {id = 2, status = 'done'} } }",
  );
  assert.deepEqual(await lua.getOutput(), {
    results: { processed: 100, errors: 0 },
    items: [
      { id: 1, status: "done" },
      { id: 2, status: "done" },
    ],
  });
});

test("_io.output may be a primitive", async () => {
  const lua = await session();
  for (const [code, want] of [
    ["_io.output = 42", 42],
    ["_io.output = 'x'", "x"],
    ["_io.output = false", false],
  ] as const) {
    await lua.compute(code);
    assert.equal(await lua.getOutput(), want, code);
  }
});

test("_io.meta is readable and writable from Lua", async () => {
  const lua = await session();
  await lua.setMetadata(exampleJson("set_metadata.meta.json"));
  const result = await runExample(lua, "lua_meta.lua");
  assert.deepEqual(result.logs, ["Request ID: req-12345", "Version: 1.0.0"]);
  assert.deepEqual(await lua.getOutput(), { itemsProcessed: 100 });
  assert.deepEqual(
    await evalOne(lua, "return { _io.meta.itemsProcessed, type(_io.meta.executionTime), _io.meta.requestId }"),
    [100, "number", "req-12345"],
  );
});
