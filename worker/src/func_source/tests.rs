//! Cutting functions out of chunks, checked against what Lua itself says
//! of each function (its lines and parameters) and what the text does when
//! compiled again.

use mlua::{Function, Lua};

use super::{function_text, is_function_expression, FuncSourceError};

/// Runs `chunk` (which returns a function), cuts the function's text out of
/// the chunk by its debug info, compiles the text again and returns it.
fn cut(lua: &Lua, chunk: &str) -> (String, Function, Function) {
    let f: Function = lua
        .load(chunk)
        .eval()
        .expect("the chunk returns a function");
    let info = f.info();
    let text = function_text(
        chunk.as_bytes(),
        info.line_defined.unwrap(),
        info.last_line_defined.unwrap(),
        info.num_params.into(),
        info.is_vararg,
    )
    .unwrap_or_else(|e| panic!("{e}\n--- chunk:\n{chunk}"));
    let text = String::from_utf8(text).unwrap();
    let again: Function = lua
        .load(format!("return {text}"))
        .eval()
        .unwrap_or_else(|e| panic!("{e}\n--- text:\n{text}"));
    (text, f, again)
}

#[test]
fn a_function_assigned_on_its_line_is_cut_out_of_the_line() {
    let lua = Lua::new();
    let (text, _, g) = cut(
        &lua,
        "local _home = {}\n_home.greet = function(name) return 'hi ' .. name end\nreturn _home.greet",
    );
    assert_eq!(text, "function(name) return 'hi ' .. name end");
    assert_eq!(g.call::<String>("x").unwrap(), "hi x");
    let (text, _, _) = cut(
        &lua,
        "local f = function(x) return x end; local h = {}; h.f = f return f",
    );
    assert_eq!(text, "function(x) return x end");
}

#[test]
fn blocks_strings_and_comments_inside_do_not_confuse_the_end() {
    let lua = Lua::new();
    let chunk = r#"
local f = function(n, ...)   -- function( in a comment
  local s = "end function ( 'end'"
  local l = [==[ end ]] until ]==]
  --[[ function() end
       end ]]
  for i = 1, n do if i % 2 == 0 then s = s .. i end end
  local k = 0
  while k < 2 do k = k + 1 end
  repeat k = k - 1 until k == 0
  local inner = function() return "end" end
  return s .. l .. inner() .. select('#', ...)
end
return f"#;
    let (text, f, g) = cut(&lua, chunk);
    assert!(text.starts_with("function(n, ...)") && text.ends_with("select('#', ...)\nend"));
    let want: String = f.call((4, 1, 2)).unwrap();
    assert_eq!(g.call::<String>((4, 1, 2)).unwrap(), want);
}

#[test]
fn function_statements_and_methods_become_expressions() {
    let lua = Lua::new();
    let (text, _, g) = cut(
        &lua,
        "local M = {}\nfunction M.add(a, b) return a + b end\nreturn M.add",
    );
    assert_eq!(text, "function(a, b) return a + b end");
    assert_eq!(g.call::<i64>((2, 3)).unwrap(), 5);
    let (text, _, g) =
        cut(&lua, "local o = { x = { y = {} } }\nfunction o.x.y:get(k)\n  return self[k]\nend\nreturn o.x.y.get");
    assert_eq!(text, "function(self, k)\n  return self[k]\nend");
    assert_eq!(
        g.call::<i64>((
            mlua::Value::Table(lua.create_table_from([("k", 9)]).unwrap()),
            "k"
        ))
        .unwrap(),
        9
    );
    let (text, _, _) = cut(
        &lua,
        "local o = {}\nfunction o:noargs() return self end\nreturn o.noargs",
    );
    assert_eq!(text, "function(self) return self end");
    let (text, _, _) = cut(
        &lua,
        "local o = {}\nfunction o:va(...) return ... end\nreturn o.va",
    );
    assert_eq!(text, "function(self, ...) return ... end");
}

#[test]
fn several_functions_on_a_line_are_told_apart_by_their_parameters() {
    let lua = Lua::new();
    let chunk = "local a, b = function(x) return x end, function(x, y) return y end return b";
    let (text, _, _) = cut(&lua, chunk);
    assert_eq!(text, "function(x, y) return y end");
    // The same parameters, different bodies: ambiguous, said so.
    let chunk = b"local a, b = function(x) return 1 end, function(x) return 2 end return b";
    assert_eq!(
        function_text(chunk, 1, 1, 1, false),
        Err(FuncSourceError::Ambiguous {
            first: 1,
            last: 1,
            count: 2
        })
    );
    // The same text twice is one answer.
    let chunk = b"local a, b = function() end, function() end return b";
    assert_eq!(
        function_text(chunk, 1, 1, 0, false).unwrap(),
        b"function() end"
    );
}

#[test]
fn wrong_lines_or_parameters_are_not_found() {
    let chunk = b"local f = function(x) return x end";
    assert_eq!(
        function_text(chunk, 1, 1, 2, false),
        Err(FuncSourceError::NotFound {
            first: 1,
            last: 1,
            nparams: 2
        })
    );
    assert!(function_text(chunk, 2, 2, 1, false).is_err());
    assert!(function_text(b"", 1, 1, 0, false).is_err());
    // Unfinished input never panics.
    for cut_at in 0..chunk.len() {
        let _ = function_text(&chunk[..cut_at], 1, 1, 1, false);
    }
    let _ = function_text(b"function f( [==[ \"unterminated", 1, 1, 0, false);
}

#[test]
fn carriage_returns_end_lines_and_comments_as_in_lua() {
    let lua = Lua::new();
    // Lines counted as Lua counts them: "\r\n", "\n\r" and a lone "\r" are one each.
    for nl in ["\r\n", "\n\r", "\r"] {
        let chunk =
            format!("local a = 1{nl}-- note{nl}local f = function(x) return x + 1 end{nl}return f");
        let (text, _, g) = cut(&lua, &chunk);
        assert_eq!(text, "function(x) return x + 1 end", "{nl:?}");
        assert_eq!(g.call::<i64>(1).unwrap(), 2);
    }
    // A "\r" ends a line comment for Lua: what follows it is code, not part
    // of the comment, so this is not one function expression.
    let forged = b"function() --\r end or (function() X = 1 end)() or function() --\nend";
    assert!(!is_function_expression(forged));
    assert!(lua
        .load(format!("return {}", String::from_utf8_lossy(forged)))
        .into_function()
        .is_ok());
}

#[test]
fn a_function_expression_is_one_function_and_nothing_else() {
    for good in [
        &b"function(x) return x end"[..],
        b"function (a, ...) local s = 'end' --[[ end ]] return a end",
        b"function() if x then return [==[ ]] end ]==] end end",
        b"function(self, x) repeat x = x - 1 until x < 0 return self end",
    ] {
        assert!(
            is_function_expression(good),
            "{}",
            String::from_utf8_lossy(good)
        );
    }
    for bad in [
        &b"function f() end"[..],
        b"function() end or function() end",
        b"function() end; os.exit()",
        b"return function() end",
        b"function() return 1",
        b"",
    ] {
        assert!(
            !is_function_expression(bad),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}
