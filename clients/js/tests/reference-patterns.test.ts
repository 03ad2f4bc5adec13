/**
 * The reference (io-table-api.md), part 2: Usage Patterns, Best Practices,
 * Performance tips, Comparison, Migration and Advanced Topics, with the
 * outputs it states, through a real daemon. Mirrors tests/tests/reference.rs.
 */

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { connect } from "../src/index.js";
import { Daemon, exampleJson, items } from "./daemon.js";
import { evalOne, runExample, withDaemon } from "./reference.js";

const { session } = withDaemon();

// ------------------------------------------------------------------- Patterns

test("pattern 1: request/response calculates stats", async () => {
  const lua = await session();
  await lua.setInput({ method: "calculateStats", params: { dataset: [1, 2, 3, 4, 5] } });
  await runExample(lua, "pattern1_request_response.lua");
  const response = await lua.getOutput();
  assert.deepEqual(response, { sum: 15, average: 3, count: 5 });
  await lua.setInput(exampleJson("pattern1_request_response.json"));
  await runExample(lua, "pattern1_request_response.lua");
  assert.deepEqual(await lua.getOutput(), { sum: 15, average: 3, count: 5 });
});

test("pattern 1: an unknown method is an error response", async () => {
  const lua = await session();
  await lua.setInput({ method: "nope", params: {} });
  await runExample(lua, "pattern1_request_response.lua");
  assert.deepEqual(await lua.getOutput(), { error: "Unknown method" });
});

test("pattern 2: batch processing of 100 000 records", async () => {
  const largeDataset = items(100_000);
  const lua = await session();
  await lua.setInput({ items: largeDataset });
  await runExample(lua, "pattern2_batch_processing.lua");
  const stats = (await lua.getOutput()) as Record<string, number>;
  // Lua adds in index order in doubles, as this does: the figures are equal exactly.
  const values = largeDataset.map((i) => i.value);
  const sum = values.reduce((a, b) => a + b, 0);
  assert.deepEqual(stats, {
    count: 100_000,
    sum,
    min: Math.min(...values),
    max: Math.max(...values),
    average: sum / 100_000,
  });
  // The reference's figures, for uniform values in [0, 100).
  assert.ok(Math.abs(stats.average - 50) < 1, `${stats.average}`);
  assert.ok(stats.min >= 0 && stats.min < 0.01 && stats.max > 99.99 && stats.max < 100);
  // Performance Considerations, Memory Usage: ipairs over the same records.
  await runExample(lua, "memory_usage.lua");
  assert.deepEqual(await lua.getOutput(), { processed: 100_000 });
});

test("pattern 3: a pipeline filters, then transforms", async () => {
  const lua = await session();
  const rawData = (exampleJson("pattern3_pipeline.json") as { items: unknown[] }).items;
  await lua.setInput({ items: rawData });
  await runExample(lua, "pattern3_filter.lua");
  const filtered = (await lua.getOutput()) as { items: unknown[] };
  assert.deepEqual(filtered.items, [rawData[0], rawData[2]]);
  await lua.setInput(filtered);
  await runExample(lua, "pattern3_transform.lua");
  assert.deepEqual(await lua.getOutput(), {
    items: [
      { id: 1, fullName: "Ada Lovelace", age: 30 },
      { id: 3, fullName: "Grace Hopper", age: 41 },
    ],
  });
});

test("pattern 3: a filter that keeps nothing gives an empty object", async () => {
  const lua = await session();
  await lua.setInput({ items: [{ id: 1, active: false }] });
  await runExample(lua, "pattern3_filter.lua");
  assert.deepEqual(await lua.getOutput(), { items: {} });
});

test("pattern 4: groups by user, in any order", async () => {
  const lua = await session();
  await lua.setInput({
    transactions: [
      { userId: 1, amount: 100 },
      { userId: 2, amount: 50 },
      { userId: 1, amount: 75 },
      { userId: 2, amount: 125 },
    ],
  });
  await runExample(lua, "pattern4_aggregation.lua");
  const aggregated = (await lua.getOutput()) as { groups: { userId: number }[] };
  aggregated.groups.sort((a, b) => a.userId - b.userId);
  assert.deepEqual(aggregated, {
    groups: [
      { userId: 1, total: 175, count: 2 },
      { userId: 2, total: 175, count: 2 },
    ],
  });
  await lua.setInput(exampleJson("pattern4_aggregation.json"));
  await runExample(lua, "pattern4_aggregation.lua");
  assert.equal(((await lua.getOutput()) as { groups: unknown[] }).groups.length, 2);
});

test("pattern 5: incremental field updates are all visible", async () => {
  const lua = await session();
  await lua.setInput({ config: { maxItems: 100, timeout: 30 } });
  await lua.setInputField("currentUser", { id: 123, name: "Alice" });
  const printed: string[] = [];
  lua.on("log", (line: string) => printed.push(line));
  const result = await runExample(lua, "pattern5_incremental_fields.lua");
  assert.deepEqual(result.logs, ["Max items: 100", "Current user: Alice"]);
  assert.deepEqual(printed, result.logs);
  assert.equal(await evalOne(lua, "return _io.input.config.timeout"), 30);
});

test("pattern 6: error handling returns a structured error", async () => {
  const lua = await session();
  await lua.setInput({ operation: "divide", a: 10, b: 0 });
  await runExample(lua, "pattern6_error_handling.lua");
  const response = (await lua.getOutput()) as Record<string, unknown>;
  assert.equal(response.status, "error");
  assert.equal(response.code, "MATH_ERROR");
  assert.equal(response.error, "pattern6_error_handling.lua:6: Division by zero");
});

test("pattern 6: success returns the quotient", async () => {
  const lua = await session();
  await lua.setInput({ operation: "divide", a: 10, b: 4 });
  await runExample(lua, "pattern6_error_handling.lua");
  assert.deepEqual(await lua.getOutput(), { status: "ok", result: 2.5 });
});

// ------------------------------------------------------------- Best Practices

test("best practice 1: clear state between requests", async () => {
  const lua = await session();
  await lua.setMetadata({ requestId: "first" });
  await lua.setInput({ numbers: [1] });
  await lua.compute("_io.output = { leftover = true }");
  await lua.clearIo();
  await lua.setInput(exampleJson("processing_arrays.json"));
  await runExample(lua, "bp1_clear_state.lua");
  assert.deepEqual(await lua.getOutput(), { hadOutput: false, hadMeta: false, numbers: 5 });
});

test("best practice 2: input is validated in Lua", async () => {
  const lua = await session();
  await lua.setInput(exampleJson("bp2_valid_user.json"));
  await runExample(lua, "bp2_validate_input.lua");
  assert.deepEqual(await lua.getOutput(), { userId: 7 });
  await lua.setInput(exampleJson("bp2_bad_user_id.json"));
  await runExample(lua, "bp2_validate_input.lua");
  assert.deepEqual(await lua.getOutput(), { error: "Invalid user ID" });
  await lua.setInput({ other: 1 });
  await runExample(lua, "bp2_validate_input.lua");
  assert.deepEqual(await lua.getOutput(), { error: "Missing user data" });
  await lua.clearIo();
  await runExample(lua, "bp2_validate_input.lua");
  assert.deepEqual(await lua.getOutput(), { error: "Missing user data" });
});

test("best practice 3: a meaningful structure", async () => {
  const lua = await session();
  await lua.setInput(exampleJson("bp3_meaningful_structure.json"));
  await runExample(lua, "bp3_meaningful_structure.lua");
  assert.deepEqual(await lua.getOutput(), {
    method: "processOrders",
    userId: 123,
    orderCount: 2,
    total: 35.5,
    version: "1.0",
  });
});

test("best practice 4: null and undefined both become nil", async () => {
  const lua = await session();
  await lua.setInput({ value: null, missing: undefined });
  const result = await runExample(lua, "bp4_null_handling.lua");
  assert.deepEqual(result.logs, ["value is nil", "missing is nil"]);
  assert.equal(await evalOne(lua, "local n = 0; for _ in pairs(_io.input) do n = n + 1 end; return n"), 0);
  await lua.setInput(exampleJson("bp4_null_handling.json"));
  assert.deepEqual((await runExample(lua, "bp4_null_handling.lua")).logs, ["value is nil", "missing is nil"]);
});

test("best practice 5: type guards", async () => {
  const lua = await session();
  for (const [value, want] of [
    [21, 42],
    [1.5, 3],
    ["hi", "HI"],
    [[1, 2, 3], 3],
    [{ a: 1 }, 0],
    [true, "unknown type"],
    [null, "unknown type"],
  ] as const) {
    await lua.setInput({ value });
    const { values } = await runExample(lua, "bp5_type_guards.lua");
    assert.deepEqual(values, [want], JSON.stringify(value));
  }
});

test("best practice 6: _home persists across computes", async () => {
  const lua = await session();
  await lua.setInput(exampleJson("pattern3_pipeline.json"));
  await runExample(lua, "bp6_home_persistence.lua");
  assert.deepEqual(await lua.getOutput(), { processed: 4, totalProcessed: 4 });
  await lua.clearIo();
  await lua.setInput({ items: [1, 2] });
  await runExample(lua, "bp6_home_persistence.lua");
  assert.deepEqual(await lua.getOutput(), { processed: 2, totalProcessed: 6 });
});

test("best practice 6: _home is shared by the sessions naming it", async () => {
  const home = `bp6-js-${process.pid}`;
  const a = await session(home);
  assert.equal(a.home, home);
  await a.setInput({ items: [1, 2, 3] });
  await runExample(a, "bp6_home_persistence.lua");
  assert.deepEqual(await a.getOutput(), { processed: 3, totalProcessed: 3 });
  const b = await session(home);
  await b.setInput({ items: [1] });
  await runExample(b, "bp6_home_persistence.lua");
  assert.deepEqual(await b.getOutput(), { processed: 1, totalProcessed: 4 });
  const other = await session();
  await other.setInput({ items: [1] });
  await runExample(other, "bp6_home_persistence.lua");
  assert.deepEqual(await other.getOutput(), { processed: 1, totalProcessed: 1 });
});

test("best practice 7: request metadata", async () => {
  const lua = await session();
  const currentUser = { id: 123 };
  const requestId = randomUUID();
  await lua.setMetadata({ requestId, timestamp: Date.now(), userId: currentUser.id });
  await lua.setInput({ data: [10, 20, 30] });
  const result = await runExample(lua, "bp7_request_metadata.lua");
  assert.deepEqual(result.logs, [`Request ID: ${requestId}`]);
  assert.deepEqual(await lua.getOutput(), { userId: 123, itemCount: 3, total: 60 });
  await lua.setMetadata(exampleJson("bp7_request_metadata.meta.json"));
  await lua.setInput(exampleJson("bp7_request_metadata.json"));
  assert.deepEqual((await runExample(lua, "bp7_request_metadata.lua")).logs, ["Request ID: 6f1c2a9e-5b7d-4c1e-9f3a-2d8b7e6c5a41"]);
});

// ------------------------------------------------ Performance: optimization tips

test("optimization tips: many input fields, and a dotted key is one key", async () => {
  const lua = await session();
  await lua.setInput({});
  const data = Array.from({ length: 1000 }, (_, i) => i);
  await Promise.all(data.map((i) => lua.setInputField(`item_${i}`, data[i])));
  await lua.setInputField("user.name", "Alice");
  await lua.setInputField("user.age", 30);
  const v = await evalOne(
    lua,
    `local n = 0; for _ in pairs(_io.input) do n = n + 1 end
     return { n, _io.input.item_999, _io.input['user.name'], _io.input['user.age'], _io.input.user == nil }`,
  );
  assert.deepEqual(v, [1002, 999, "Alice", 30, true]);
});

// ---------------------------------------------- Comparison and Migration

test("comparison, old approach: the sum comes back", async () => {
  const lua = await session();
  const { values } = await runExample(lua, "comparison_old_approach.lua");
  assert.deepEqual(values, [15]);
});

test("comparison, new approach: structured output", async () => {
  const lua = await session();
  await lua.setInput({ data: [1, 2, 3, 4, 5] });
  await runExample(lua, "comparison_new_approach.lua");
  assert.deepEqual(await lua.getOutput(), { sum: 15, count: 5, average: 3 });
  await lua.setInput(exampleJson("comparison_new_approach.json"));
  await runExample(lua, "comparison_new_approach.lua");
  assert.deepEqual(await lua.getOutput(), { sum: 15, count: 5, average: 3 });
});

test("migration, before: the sum comes back as a string", async () => {
  const lua = await session();
  const smallData = [1, 2, 3];
  const code = `
  local data = {${smallData.join(",")}}
  local sum = 0
  for i, v in ipairs(data) do
    sum = sum + v
  end
  return tostring(sum)
`;
  const result = (await lua.compute(code)).values[0] as string;
  assert.equal(result, "6");
  assert.equal(parseInt(result), 6);
  assert.deepEqual((await runExample(lua, "migration_before.lua")).values, ["6"]);
});

test("migration, after: 100 000 numbers are summed", async () => {
  const lua = await session();
  const largeData = new Array(100000).fill(0).map((_, i) => i + 1);
  await lua.setInput({ data: largeData });
  await runExample(lua, "migration.lua");
  assert.deepEqual(await lua.getOutput(), { sum: 5000050000, count: 100000 });
});

// ----------------------------------------------------------- Advanced Topics

test("nested table access reads four levels down", async () => {
  const lua = await session();
  await lua.setInput({ level1: { level2: { level3: { level4: { value: "deep value" } } } } });
  const result = await runExample(lua, "deep_nesting.lua");
  assert.deepEqual(result.logs, ["deep value"]);
  assert.deepEqual(result.values, ["deep value"]);
  await lua.setInput(exampleJson("deep_nesting.json"));
  assert.deepEqual((await runExample(lua, "deep_nesting.lua")).values, ["deep value"]);
});

test("200 levels of nesting go in and come out", async () => {
  let v: unknown = "bottom";
  for (let i = 0; i < 200; i++) v = { next: v };
  const lua = await session();
  await lua.setInput(v);
  const got = await evalOne(
    lua,
    "local t = _io.input; local d = 0; while type(t) == 'table' do t = t.next; d = d + 1 end; return { d, t }",
  );
  assert.deepEqual(got, [200, "bottom"]);
  await lua.compute("_io.output = _io.input");
  assert.deepEqual(await lua.getOutput(), v);
});

test("type conversions, JavaScript to Lua", async () => {
  const lua = await session();
  await lua.setInput({ ...(exampleJson("type_conversions.json") as object), undefined: undefined });
  const result = await runExample(lua, "type_conversions.lua");
  assert.deepEqual(result.logs, [
    "array\ttable",
    "false\tboolean",
    "float\tnumber",
    "number\tnumber",
    "object\ttable",
    "string\tstring",
    "true\tboolean",
    "null\tnil\tundefined\tnil",
  ]);
  const v = await evalOne(
    lua,
    `local i = _io.input
     return { i['true'], i['false'], math.type(i.number), math.type(i.float), i.string,
              getmetatable(i.object), i.object.a + i.object.b, getmetatable(i.array), #i.array, i.array[3] }`,
  );
  assert.deepEqual(v, [true, false, "integer", "float", "hello", "external table", 3, "external table", 3, 3]);
});

test("type conversions, Lua to JavaScript", async () => {
  const lua = await session();
  await lua.setInput(exampleJson("type_conversions.json"));
  await runExample(lua, "type_conversions.lua");
  assert.deepEqual(await lua.getOutput(), { bool: false, int: 123, str: "hello", object: { a: 1, b: 2 }, array: [1, 2, 3] });
  const { values } = await lua.compute("return nil, true, false, 123, 'hello', _io.input.object, _io.input.array, {}");
  assert.deepEqual(values, [null, true, false, 123, "hello", { a: 1, b: 2 }, [1, 2, 3], {}]);
});

test("debugging tips: table info and the logged structure", async () => {
  const lua = await session();
  const inputData = exampleJson("quick_start.json");
  await lua.setInput(inputData);
  const ioId = await lua.getIoTableId();
  const tableInfo = await lua.getTableInfo();
  assert.equal(tableInfo.io, ioId);
  assert.ok(tableInfo.session_tables >= 3, JSON.stringify(tableInfo)); // _io, the input, input.user
  assert.ok(tableInfo.session_bytes > 0);
  assert.equal(typeof tableInfo.home, "number");
  const result = await runExample(lua, "debugging_tips.lua");
  assert.equal(result.logs.length, 3, JSON.stringify(result.logs));
  assert.equal(result.logs[0], "Input type: table");
  assert.match(result.logs[1], /^ {2}user = external table: 0x/);
  assert.match(result.logs[2], /^Output:\texternal table: 0x/);
  assert.deepEqual(await lua.getOutput(), { ok: true });
});

/** A field of `/proc/<pid>/status`, in KiB. */
function procKib(pid: number, field: string): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8")
    .split("\n")
    .find((l) => l.startsWith(field));
  assert.ok(line, `no ${field} in /proc/${pid}/status`);
  return Number(line.split(/\s+/)[1]);
}

test("large arrays and memory usage: 1 000 000 items with bounded worker memory", async (t) => {
  // A daemon of its own with one fresh worker, so its peak is these computes'.
  const d = await Daemon.start(["--workers", "1"]);
  const client = await connect(d.socket);
  try {
    const [worker] = d.workerPids();
    const lua = await client.session();
    const data = items(1_000_000);
    const jsonBytes = JSON.stringify({ items: data }).length;
    await lua.setInput({ items: data });
    const result = await runExample(lua, "large_arrays.lua");
    assert.deepEqual(await lua.getOutput(), { processed: 1_000_000 });
    assert.deepEqual(
      result.logs,
      Array.from({ length: 100 }, (_, k) => `Processed: ${(k + 1) * 10_000}`),
    );
    // Performance Considerations, Memory Usage: ipairs over the same million
    // records, the reference's size.
    await runExample(lua, "memory_usage.lua");
    assert.deepEqual(await lua.getOutput(), { processed: 1_000_000 });
    // The worker never holds the input: its peak is a fraction of the data.
    const peak = procKib(worker, "VmHWM");
    t.diagnostic(`1M items: input JSON ${jsonBytes >> 10} KiB; worker ${worker} peak RSS ${peak} KiB`);
    assert.ok(peak * 1024 < jsonBytes / 3, `worker peak ${peak} KiB vs JSON ${jsonBytes} B`);
  } finally {
    await client.close();
    assert.equal(await d.stop(), 0);
  }
});
