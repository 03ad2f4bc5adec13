"""The reference (io-table-api.md), part 2: Usage Patterns, Best Practices,
Performance tips, Comparison, Migration and Advanced Topics, with the
outputs it states, through a real daemon. Mirrors tests/tests/reference.rs."""

import json
import os
import uuid

import luapool
from conftest import Daemon, eval_one, example_json, items, run_example

# ------------------------------------------------------------------- Patterns


def test_pattern1_request_response_calculates_stats(lua):
    lua.set_input(example_json("pattern1_request_response.json"))
    run_example(lua, "pattern1_request_response.lua")
    out = lua.get_output()
    assert out == {"sum": 15, "average": 3.0, "count": 5}
    assert isinstance(out["average"], float)  # 15 / 5 in Lua is a float


def test_pattern1_unknown_method_is_an_error_response(lua):
    lua.set_input({"method": "nope", "params": {}})
    run_example(lua, "pattern1_request_response.lua")
    assert lua.get_output() == {"error": "Unknown method"}


def test_pattern2_batch_processing_100000_records(lua):
    data = items(100_000)
    lua.set_input({"items": data})
    run_example(lua, "pattern2_batch_processing.lua")
    stats = lua.get_output()
    # Lua adds in index order in doubles, as this does: the figures are equal exactly.
    values = [i["value"] for i in data]
    total = 0.0
    for v in values:
        total += v
    assert stats == {"count": 100_000, "sum": total, "min": min(values), "max": max(values),
                     "average": total / 100_000}
    # The reference's figures, for uniform values in [0, 100).
    assert abs(stats["average"] - 50) < 1
    assert 0 <= stats["min"] < 0.01 and 99.99 < stats["max"] < 100
    # Performance Considerations, Memory Usage: ipairs over the same records.
    run_example(lua, "memory_usage.lua")
    assert lua.get_output() == {"processed": 100_000}


def test_pattern3_pipeline_filter_then_transform(lua):
    raw = example_json("pattern3_pipeline.json")
    lua.set_input(raw)
    run_example(lua, "pattern3_filter.lua")
    filtered = lua.get_output()
    assert filtered["items"] == [raw["items"][0], raw["items"][2]]
    lua.set_input(filtered)
    run_example(lua, "pattern3_transform.lua")
    assert lua.get_output() == {"items": [{"id": 1, "fullName": "Ada Lovelace", "age": 30},
                                          {"id": 3, "fullName": "Grace Hopper", "age": 41}]}


def test_pattern3_filter_of_nothing_active_is_an_empty_dict(lua):
    lua.set_input({"items": [{"id": 1, "active": False}]})
    run_example(lua, "pattern3_filter.lua")
    assert lua.get_output() == {"items": {}}


def test_pattern4_groups_by_user_in_any_order(lua):
    lua.set_input(example_json("pattern4_aggregation.json"))
    run_example(lua, "pattern4_aggregation.lua")
    groups = sorted(lua.get_output()["groups"], key=lambda g: g["userId"])
    assert groups == [{"userId": 1, "total": 175, "count": 2}, {"userId": 2, "total": 175, "count": 2}]


def test_pattern5_incremental_field_updates_are_all_visible(client):
    printed = []
    with client.session(on_log=printed.append) as lua:
        lua.set_input({"config": {"maxItems": 100, "timeout": 30}})
        lua.set_input_field("currentUser", {"id": 123, "name": "Alice"})
        result = run_example(lua, "pattern5_incremental_fields.lua")
        assert result.logs == ["Max items: 100", "Current user: Alice"]
        assert printed == result.logs
        assert eval_one(lua, "return _io.input.config.timeout") == 30


def test_pattern6_error_handling_returns_a_structured_error(lua):
    lua.set_input(example_json("pattern6_error_handling.json"))
    run_example(lua, "pattern6_error_handling.lua")
    out = lua.get_output()
    assert out["status"] == "error"
    assert out["code"] == "MATH_ERROR"
    assert out["error"] == "pattern6_error_handling.lua:6: Division by zero"


def test_pattern6_success_returns_the_quotient(lua):
    lua.set_input({"operation": "divide", "a": 10, "b": 4})
    run_example(lua, "pattern6_error_handling.lua")
    assert lua.get_output() == {"status": "ok", "result": 2.5}


# ------------------------------------------------------------- Best Practices


def test_best_practice1_clear_state_between_requests(lua):
    lua.set_metadata({"requestId": "first"})
    lua.set_input({"numbers": [1]})
    lua.compute("_io.output = { leftover = true }")
    lua.clear_io()
    lua.set_input(example_json("processing_arrays.json"))
    run_example(lua, "bp1_clear_state.lua")
    assert lua.get_output() == {"hadOutput": False, "hadMeta": False, "numbers": 5}


def test_best_practice2_validates_input(lua):
    lua.set_input(example_json("bp2_valid_user.json"))
    run_example(lua, "bp2_validate_input.lua")
    assert lua.get_output() == {"userId": 7}
    lua.set_input(example_json("bp2_bad_user_id.json"))
    run_example(lua, "bp2_validate_input.lua")
    assert lua.get_output() == {"error": "Invalid user ID"}
    lua.set_input({"other": 1})
    run_example(lua, "bp2_validate_input.lua")
    assert lua.get_output() == {"error": "Missing user data"}
    lua.clear_io()
    run_example(lua, "bp2_validate_input.lua")
    assert lua.get_output() == {"error": "Missing user data"}


def test_best_practice3_meaningful_structure(lua):
    lua.set_input(example_json("bp3_meaningful_structure.json"))
    run_example(lua, "bp3_meaningful_structure.lua")
    assert lua.get_output() == {"method": "processOrders", "userId": 123, "orderCount": 2, "total": 35.5,
                                "version": "1.0"}


def test_best_practice4_none_is_nil(lua):
    lua.set_input({"value": None})
    result = run_example(lua, "bp4_null_handling.lua")
    assert result.logs == ["value is nil", "missing is nil"]
    assert eval_one(lua, "local n = 0; for _ in pairs(_io.input) do n = n + 1 end; return n") == 0
    lua.set_input(example_json("bp4_null_handling.json"))
    assert run_example(lua, "bp4_null_handling.lua").logs == ["value is nil", "missing is nil"]


def test_best_practice5_type_guards(lua):
    for value, want in [(21, 42), (1.5, 3.0), ("hi", "HI"), ([1, 2, 3], 3), ({"a": 1}, 0),
                        (True, "unknown type"), (None, "unknown type")]:
        lua.set_input({"value": value})
        assert run_example(lua, "bp5_type_guards.lua").values == [want], value


def test_best_practice6_home_persists_across_computes(lua):
    lua.set_input(example_json("pattern3_pipeline.json"))
    run_example(lua, "bp6_home_persistence.lua")
    assert lua.get_output() == {"processed": 4, "totalProcessed": 4}
    lua.clear_io()
    lua.set_input({"items": [1, 2]})
    run_example(lua, "bp6_home_persistence.lua")
    assert lua.get_output() == {"processed": 2, "totalProcessed": 6}


def test_best_practice6_home_is_shared_by_sessions_naming_it(client):
    home = f"bp6-py-{os.getpid()}"
    with client.session(home) as a:
        assert a.home == home
        a.set_input({"items": [1, 2, 3]})
        run_example(a, "bp6_home_persistence.lua")
        assert a.get_output() == {"processed": 3, "totalProcessed": 3}
    with client.session(home=home) as b:
        b.set_input({"items": [1]})
        run_example(b, "bp6_home_persistence.lua")
        assert b.get_output() == {"processed": 1, "totalProcessed": 4}
    with client.session() as other:
        other.set_input({"items": [1]})
        run_example(other, "bp6_home_persistence.lua")
        assert other.get_output() == {"processed": 1, "totalProcessed": 1}


def test_best_practice7_request_metadata(lua):
    request_id = str(uuid.uuid4())
    lua.set_metadata({"requestId": request_id, "timestamp": 1732492800000, "userId": 123})
    lua.set_input(example_json("bp7_request_metadata.json"))
    result = run_example(lua, "bp7_request_metadata.lua")
    assert result.logs == [f"Request ID: {request_id}"]
    assert lua.get_output() == {"userId": 123, "itemCount": 3, "total": 60}
    lua.set_metadata(example_json("bp7_request_metadata.meta.json"))
    assert run_example(lua, "bp7_request_metadata.lua").logs == ["Request ID: 6f1c2a9e-5b7d-4c1e-9f3a-2d8b7e6c5a41"]


# ------------------------------------------------ Performance: optimization tips


def test_optimization_tip_many_input_fields_and_dotted_keys(client, lua):
    lua.set_input({})
    futures = [client.submit("set_input_field", lua.id, f"item_{i}", i) for i in range(1000)]
    for f in futures:
        assert f.result() is None
    lua.set_input_field("user.name", "Alice")
    lua.set_input_field("user.age", 30)
    v = eval_one(lua, "local n = 0; for _ in pairs(_io.input) do n = n + 1 end "
                      "return { n, _io.input.item_999, _io.input['user.name'], _io.input['user.age'], "
                      "_io.input.user == nil }")
    assert v == [1002, 999, "Alice", 30, True]


# ---------------------------------------------- Comparison and Migration


def test_comparison_old_approach_returns_the_sum(lua):
    assert run_example(lua, "comparison_old_approach.lua").values == [15]


def test_comparison_new_approach_returns_structured_output(lua):
    lua.set_input(example_json("comparison_new_approach.json"))
    run_example(lua, "comparison_new_approach.lua")
    assert lua.get_output() == {"sum": 15, "count": 5, "average": 3.0}


def test_migration_before_returns_a_string(lua):
    small_data = [1, 2, 3]
    code = f"""
      local data = {{{",".join(map(str, small_data))}}}
      local sum = 0
      for i, v in ipairs(data) do sum = sum + v end
      return tostring(sum)
    """
    assert lua.compute(code).values == ["6"]
    assert run_example(lua, "migration_before.lua").values == ["6"]


def test_migration_after_sums_100000_numbers(lua):
    lua.set_input({"data": list(range(1, 100_001))})
    run_example(lua, "migration.lua")
    assert lua.get_output() == {"sum": 5000050000, "count": 100000}


# ----------------------------------------------------------- Advanced Topics


def test_deep_nesting_reads_four_levels_down(lua):
    lua.set_input(example_json("deep_nesting.json"))
    result = run_example(lua, "deep_nesting.lua")
    assert result.logs == ["deep value"]
    assert result.values == ["deep value"]


def test_deep_nesting_200_levels_in_and_out(lua):
    v = "bottom"
    for _ in range(200):
        v = {"next": v}
    lua.set_input(v)
    got = eval_one(lua, "local t = _io.input; local d = 0; while type(t) == 'table' do t = t.next; d = d + 1 end; "
                        "return { d, t }")
    assert got == [200, "bottom"]
    lua.compute("_io.output = _io.input")
    assert lua.get_output() == v


def test_type_conversions_host_to_lua(lua):
    lua.set_input(example_json("type_conversions.json"))
    result = run_example(lua, "type_conversions.lua")
    assert result.logs == ["array\ttable", "false\tboolean", "float\tnumber", "number\tnumber", "object\ttable",
                           "string\tstring", "true\tboolean", "null\tnil\tundefined\tnil"]
    v = eval_one(lua, "local i = _io.input return { i['true'], i['false'], math.type(i.number), "
                      "math.type(i.float), i.string, getmetatable(i.object), i.object.a + i.object.b, "
                      "getmetatable(i.array), #i.array, i.array[3] }")
    assert v == [True, False, "integer", "float", "hello", "external table", 3, "external table", 3, 3]


def test_type_conversions_lua_to_host(lua):
    lua.set_input(example_json("type_conversions.json"))
    run_example(lua, "type_conversions.lua")
    assert lua.get_output() == {"bool": False, "int": 123, "str": "hello", "object": {"a": 1, "b": 2},
                                "array": [1, 2, 3]}
    values = lua.compute("return nil, true, false, 123, 'hello', _io.input.object, _io.input.array, {}").values
    assert values == [None, True, False, 123, "hello", {"a": 1, "b": 2}, [1, 2, 3], {}]


def test_debugging_tips_table_info_and_logged_structure(lua):
    lua.set_input(example_json("quick_start.json"))
    info = lua.get_table_info()
    assert info["io"] == lua.get_io_table_id()
    assert info["session_tables"] >= 3, info  # _io, the input, input.user
    assert info["session_bytes"] > 0
    result = run_example(lua, "debugging_tips.lua")
    assert len(result.logs) == 3, result.logs
    assert result.logs[0] == "Input type: table"
    assert result.logs[1].startswith("  user = external table: 0x")
    assert result.logs[2].startswith("Output:\texternal table: 0x")
    assert lua.get_output() == {"ok": True}


def _proc_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        line = next(line for line in f if line.startswith(field))
    return int(line.split()[1])


def test_large_arrays_and_memory_usage_1_000_000_items_with_bounded_worker_memory():
    # A daemon of its own with one fresh worker, so its peak is these computes'.
    d = Daemon(["--workers", "1"])
    try:
        [worker] = d.worker_pids()
        with luapool.connect(d.socket) as client, client.session() as lua:
            data = items(1_000_000)
            json_bytes = len(json.dumps({"items": data}))
            lua.set_input({"items": data})
            result = run_example(lua, "large_arrays.lua")
            assert lua.get_output() == {"processed": 1_000_000}
            assert result.logs == [f"Processed: {k * 10_000}" for k in range(1, 101)]
            # Performance Considerations, Memory Usage: ipairs over the same
            # million records, the reference's size.
            run_example(lua, "memory_usage.lua")
            assert lua.get_output() == {"processed": 1_000_000}
            # The worker never holds the input: its peak is a fraction of the data.
            peak = _proc_kib(worker, "VmHWM")
            assert peak * 1024 < json_bytes / 3, f"worker peak {peak} KiB vs JSON {json_bytes} B"
    finally:
        assert d.stop() == 0
