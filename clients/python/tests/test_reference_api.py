"""The reference (io-table-api.md), part 1: Quick Start, the host API and
the Lua API, with the outputs it states, through a real daemon. Mirrors
tests/tests/reference.rs and the JavaScript client's tests."""

import pytest

import luapool
from conftest import eval_one, example_json, run_example

# ---------------------------------------------------------------- Quick Start


def test_quick_start_greets_alice_and_returns_success(lua):
    lua.set_input({"user": {"id": 123, "name": "Alice", "age": 30}})
    result = run_example(lua, "quick_start.lua")
    assert result.values == ["success"]
    assert lua.get_output() == {"message": "Hello, Alice", "isAdult": True, "userId": 123}


def test_quick_start_example_input_file_matches_the_reference(lua):
    lua.set_input(example_json("quick_start.json"))
    run_example(lua, "quick_start.lua")
    assert lua.get_output() == {"message": "Hello, Alice", "isAdult": True, "userId": 123}


def test_processing_arrays_sums_and_counts(lua):
    lua.set_input({"numbers": [1, 2, 3, 4, 5]})
    run_example(lua, "processing_arrays.lua")
    assert lua.get_output() == {"sum": 15, "count": 5}
    assert example_json("processing_arrays.json") == {"numbers": [1, 2, 3, 4, 5]}


# ------------------------------------------------------------- host API


def test_get_io_table_id_is_stable_per_session_and_distinct_across_sessions(client):
    with client.session() as a, client.session() as b:
        io_id = a.get_io_table_id()
        assert isinstance(io_id, int)
        assert a.get_io_table_id() == io_id
        assert b.get_io_table_id() != io_id
        assert a.get_table_info()["io"] == io_id
        a.set_input({"x": 1})
        a.compute("_io.output = _io.input.x")
        a.clear_io()
        assert a.get_io_table_id() == io_id


def test_set_input_simple_object(lua):
    lua.set_input({"message": "Hello", "value": 42, "flag": True})
    v = eval_one(lua, "local i = _io.input return { i.message, math.type(i.value), i.value, i.flag, type(i) }")
    assert v == ["Hello", "integer", 42, True, "table"]


def test_set_input_nested_structure(lua):
    lua.set_input({
        "user": {"name": "Alice", "address": {"city": "NYC", "zip": "10001"}},
        "items": [{"id": 1, "name": "Item 1"}, {"id": 2, "name": "Item 2"}],
    })
    v = eval_one(lua, "local i = _io.input return { i.user.name, i.user.address.city, i.user.address.zip, "
                      "#i.items, i.items[1].id, i.items[2].name }")
    assert v == ["Alice", "NYC", "10001", 2, 1, "Item 2"]


def test_set_input_primitives_and_none(lua):
    probe = "return { type(_io.input), _io.input, tostring(math.type(_io.input)) }"
    lua.set_input("simple string")
    assert eval_one(lua, probe) == ["string", "simple string", "nil"]
    lua.set_input(42)
    assert eval_one(lua, probe) == ["number", 42, "integer"]
    lua.set_input(1.5)
    assert eval_one(lua, probe) == ["number", 1.5, "float"]
    lua.set_input(True)
    assert eval_one(lua, probe) == ["boolean", True, "nil"]
    lua.set_input(None)
    assert eval_one(lua, "return type(_io.input)") == "nil"


def test_set_input_replaces_the_previous_input(lua):
    lua.set_input({"a": 1, "b": 2})
    lua.set_input({"c": 3})
    assert eval_one(lua, "return { _io.input.a == nil, _io.input.b == nil, _io.input.c }") == [True, True, 3]


def test_get_output_converts_tables_to_dicts_and_lists(lua):
    run_example(lua, "get_output.lua")
    assert lua.get_output() == {"result": "processed", "count": 10, "items": [1, 2, 3]}


def test_get_output_is_none_when_output_was_not_set(lua):
    assert lua.get_output() is None
    lua.compute("local x = 1")
    assert lua.get_output() is None


def test_set_input_field_sets_fields_seen_in_lua(lua):
    lua.set_input_field("userId", 123)
    lua.set_input_field("action", "update")
    lua.set_input_field("params", {"limit": 10})
    v = eval_one(lua, "return { _io.input.userId == 123, _io.input.action == 'update', _io.input.params.limit == 10 }")
    assert v == [True, True, True]


def test_set_input_field_creates_the_input_table(lua):
    assert eval_one(lua, "return _io.input == nil") is True
    lua.set_input_field("only", "field")
    assert eval_one(lua, "return { type(_io.input), _io.input.only }") == ["table", "field"]
    lua.set_input(42)
    lua.set_input_field("k", 1)
    assert eval_one(lua, "return { type(_io.input), _io.input.k }") == ["table", 1]


def test_set_input_field_keeps_other_fields_and_input_is_read_only_in_lua(lua):
    lua.set_input({"a": 1})
    lua.set_input_field("b", {"c": 2})
    assert eval_one(lua, "return { _io.input.a, _io.input.b.c }") == [1, 2]
    with pytest.raises(luapool.LuaError) as e:
        lua.compute("_io.input.b.c = 3")
    assert "read-only" in str(e.value) and "'c'" in str(e.value)


def test_get_output_field_returns_one_field_or_none(lua):
    run_example(lua, "get_output_field.lua")
    assert lua.get_output_field("status") == "ok"
    assert lua.get_output_field("data") == {"huge": "dataset"}
    assert lua.get_output_field("timestamp") == 1234567890
    assert lua.get_output_field("missing") is None


def test_get_output_field_is_none_when_output_is_not_a_table(lua):
    assert lua.get_output_field("status") is None
    lua.compute("_io.output = 'just a string'")
    assert lua.get_output_field("status") is None


def test_set_metadata_is_readable_and_printed(lua):
    lua.set_metadata(example_json("set_metadata.meta.json"))
    printed = []
    result = lua.compute('print("Request ID: " .. _io.meta.requestId)', on_log=printed.append)
    assert result.logs == ["Request ID: req-12345"]
    assert printed == ["Request ID: req-12345"]
    assert run_example(lua, "set_metadata.lua").logs == ["Request ID: req-12345"]


def test_set_metadata_is_separate_from_input_and_output(lua):
    lua.set_metadata({"requestId": "req-1"})
    lua.set_input({"requestId": "input"})
    lua.compute("_io.output = { requestId = 'output' }")
    assert eval_one(lua, "return { _io.meta.requestId, _io.input.requestId }") == ["req-1", "input"]
    assert lua.get_output() == {"requestId": "output"}


def test_clear_io_clears_input_output_and_meta_but_not_home(lua):
    lua.set_input({"data": "test"})
    lua.set_metadata({"requestId": "r"})
    lua.compute("_io.output = { result = 'done' }; _home.kept = 'yes'")
    assert lua.get_output() == {"result": "done"}
    lua.clear_io()
    # "_io.input, _io.output, and _io.meta are now nil" (the example wins over
    # the setMetadata note, as in the Rust client).
    assert eval_one(lua, "return { _io.input == nil, _io.output == nil, _io.meta == nil, _home.kept }") == [
        True, True, True, "yes"]
    assert lua.get_output() is None


# ------------------------------------------------------------ Lua API examples


def test_lua_input_example_reads_nested_fields_and_iterates(lua):
    lua.set_input(example_json("lua_input.json"))
    result = run_example(lua, "lua_input.lua")
    assert result.logs == ["1\tItem 1", "2\tItem 2", "Field exists"]
    assert lua.get_output() == {"message": "Hello", "count": 42, "userName": "Alice", "city": "NYC"}


def test_lua_input_is_nil_when_no_input_was_set(lua):
    assert eval_one(lua, "return _io.input == nil") is True


def test_lua_output_last_assignment_wins_and_can_be_built_incrementally(lua):
    lua.set_input(example_json("lua_input.json"))
    run_example(lua, "lua_output.lua")
    assert lua.get_output() == {"count": 2}
    lua.compute("_io.output = { results = { processed = 100, errors = 0 }, "
                "items = { {id = 1, status = 'done'}, {id = 2, status = 'done'} } }")
    assert lua.get_output() == {"results": {"processed": 100, "errors": 0},
                                "items": [{"id": 1, "status": "done"}, {"id": 2, "status": "done"}]}


def test_lua_output_may_be_a_primitive(lua):
    for code, want in [("_io.output = 42", 42), ("_io.output = 'x'", "x"), ("_io.output = false", False)]:
        lua.compute(code)
        assert lua.get_output() == want, code


def test_lua_meta_is_readable_and_writable_from_lua(lua):
    lua.set_metadata(example_json("set_metadata.meta.json"))
    result = run_example(lua, "lua_meta.lua")
    assert result.logs == ["Request ID: req-12345", "Version: 1.0.0"]
    assert lua.get_output() == {"itemsProcessed": 100}
    assert eval_one(lua, "return { _io.meta.itemsProcessed, type(_io.meta.executionTime), _io.meta.requestId }") == [
        100, "number", "req-12345"]
