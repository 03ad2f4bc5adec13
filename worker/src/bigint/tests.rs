//! The module as a script uses it, in a plain Lua state.

use mlua::Lua;

use super::{library, MAX_BITS};

fn lua() -> Lua {
    let lua = Lua::new();
    lua.globals().set("bigint", library(&lua).unwrap()).unwrap();
    lua
}

/// Evaluates `code` (an expression) to a string.
fn s(lua: &Lua, code: &str) -> String {
    lua.load(format!("return tostring({code})"))
        .eval::<String>()
        .unwrap_or_else(|e| panic!("{code}: {e}"))
}

/// The error `code` raises.
fn error(lua: &Lua, code: &str) -> String {
    match lua.load(code).exec() {
        Ok(()) => panic!("{code} did not fail"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn construction_from_integers_floats_strings_and_bases() {
    let l = lua();
    assert_eq!(s(&l, "bigint.new(42)"), "42");
    assert_eq!(
        s(&l, "bigint.new(-9223372036854775808)"),
        "-9223372036854775808"
    );
    assert_eq!(s(&l, "bigint.new(2^70)"), "1180591620717411303424");
    assert_eq!(
        s(&l, "bigint.new('123456789012345678901234567890')"),
        "123456789012345678901234567890"
    );
    assert_eq!(s(&l, "bigint.new('-ff', 16)"), "-255");
    assert_eq!(s(&l, "bigint.new('+1010', 2)"), "10");
    assert_eq!(s(&l, "bigint.new('zz', 36)"), "1295");
    assert_eq!(s(&l, "bigint.new(' 1_000_000 ')"), "1000000");
    assert_eq!(s(&l, "bigint.new(bigint.new(7))"), "7");
}

#[test]
fn bad_strings_and_bases_are_clear_errors() {
    let l = lua();
    for (code, want) in [
        ("bigint.new('12x')", "\"12x\" is not an integer in base 10"),
        ("bigint.new('')", "is not an integer in base 10"),
        ("bigint.new('-')", "is not an integer in base 10"),
        ("bigint.new('1__')", "is not an integer"),
        ("bigint.new('19', 8)", "\"19\" is not an integer in base 8"),
        ("bigint.new('1', 1)", "base 1 is out of range (2 to 36)"),
        ("bigint.new('1', 37)", "base 37 is out of range"),
        ("bigint.new(1.5)", "1.5 is not an integer"),
        ("bigint.new(0/0)", "is not an integer"),
        ("bigint.new(1/0)", "inf is not an integer"),
        ("bigint.new({})", "cannot make a bigint from table"),
        ("bigint.new(1, 16)", "a base goes with a string of digits"),
        ("bigint.new(1):tostring(1)", "base 1 is out of range"),
        (
            "local _ = bigint.new(1) + '2'",
            "got a string (use bigint.new(s))",
        ),
        (
            "local _ = bigint.new(1) + {}",
            "expected a bigint or an integer, got table",
        ),
    ] {
        let e = error(&l, code);
        assert!(e.contains("bigint: ") && e.contains(want), "{code}: {e}");
    }
}

#[test]
fn every_operation_as_method_function_and_metamethod() {
    let l = lua();
    let big = "bigint.new('100000000000000000000')"; // 10^20
    for (code, want) in [
        (format!("{big} + 1"), "100000000000000000001"),
        (format!("1 + {big}"), "100000000000000000001"),
        (format!("{big}:add(1)"), "100000000000000000001"),
        (format!("bigint.add({big}, {big})"), "200000000000000000000"),
        (format!("{big} - 1"), "99999999999999999999"),
        (format!("1 - {big}"), "-99999999999999999999"),
        (format!("{big}:sub({big})"), "0"),
        (
            format!("{big} * {big}"),
            "10000000000000000000000000000000000000000",
        ),
        (format!("{big}:mul(-3)"), "-300000000000000000000"),
        (format!("{big} // 7"), "14285714285714285714"),
        (format!("{big} / 7"), "14285714285714285714"),
        (format!("{big}:div(7)"), "14285714285714285714"),
        (format!("{big} % 7"), "2"),
        (format!("{big}:mod(7)"), "2"),
        (format!("bigint.mod({big}, 7)"), "2"),
        (
            format!("{big} ^ 2"),
            "10000000000000000000000000000000000000000",
        ),
        (format!("{big}:pow(0)"), "1"),
        (
            "bigint.new(2):pow(100)".into(),
            "1267650600228229401496703205376",
        ),
        (format!("-{big}"), "-100000000000000000000"),
        (format!("{big}:abs()"), "100000000000000000000"),
        (format!("(-{big}):abs()"), "100000000000000000000"),
        (format!("{big}:sign()"), "1"),
        ("bigint.new(0):sign()".into(), "0"),
        (format!("(-{big}):sign()"), "-1"),
        (format!("{big}:bits()"), "67"),
        (format!("{big} .. '!'"), "100000000000000000000!"),
        (format!("'n=' .. {big}"), "n=100000000000000000000"),
        (format!("{big}:tostring(16)"), "56bc75e2d63100000"),
        (
            format!("{big}:tostring(2)"),
            "1010110101111000111010111100010110101100011000100000000000000000000",
        ),
        (format!("bigint.tostring({big}, 36)"), "l3r41ifs0q5ts"),
        ("bigint.new(12):tointeger()".into(), "12"),
        (format!("{big}:tointeger()"), "nil"),
        ("math.type(bigint.new(12):tointeger())".into(), "integer"),
    ] {
        assert_eq!(s(&l, &code), want, "{code}");
    }
}

#[test]
fn division_and_modulo_floor_like_lua_integers() {
    let l = lua();
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed as i64) >> (seed % 60)
    };
    for _ in 0..500 {
        let (a, b) = (next(), next());
        if b == 0 || (a == i64::MIN && b == -1) {
            continue;
        }
        let ok: bool = l
            .load(format!(
                "local a, b = {a}, {b}
                 local A, B = bigint.new(a), bigint.new(b)
                 return (A // B):tointeger() == a // b and (A % B):tointeger() == a % b
                    and (A // b):tointeger() == a // b and (a % B):tointeger() == a % b"
            ))
            .eval()
            .unwrap();
        assert!(ok, "{a} // {b}, {a} % {b}");
    }
}

#[test]
fn comparison_with_bigints_and_integers() {
    let l = lua();
    let ok: bool = l
        .load(
            "local a, b = bigint.new('100000000000000000000'), bigint.new(5)
             return a > b and b < a and b <= 5 and 5 <= b and b >= 5 and not (b < 5)
                and a == bigint.new('1' .. string.rep('0', 20)) and a ~= b
                and b > 4 and 6 > b and -a < 0 and bigint.new(5) == b
                and (bigint.new(1) == 1) == false",
        )
        .eval()
        .unwrap();
    assert!(ok);
}

#[test]
fn division_by_zero_is_an_error() {
    let l = lua();
    for code in [
        "local _ = bigint.new(1) // 0",
        "local _ = bigint.new(1) / 0",
        "local _ = bigint.new(1) % bigint.new(0)",
        "local _ = bigint.new(1):div(0)",
        "local _ = bigint.mod(1, 0)",
    ] {
        assert!(
            error(&l, code).contains("bigint: division by zero"),
            "{code}"
        );
    }
    assert!(error(&l, "local _ = bigint.new(2) ^ -1").contains("a negative exponent"));
}

#[test]
fn results_past_the_size_limit_fail_before_the_work() {
    let l = lua();
    let e = error(&l, "local _ = bigint.new(3) ^ 1000000");
    assert!(
        e.contains(&format!("over the limit of {MAX_BITS} bits")),
        "{e}"
    );
    let e = error(&l, "local _ = bigint.new(2) ^ 4000000000000");
    assert!(e.contains("the exponent is too large"), "{e}");
    // Just under: fine; doubling it is not.
    let n: i64 = l
        .load(format!("return (bigint.new(2) ^ {}):bits()", MAX_BITS - 1))
        .eval()
        .unwrap();
    assert_eq!(n as u64, MAX_BITS);
    let e = error(
        &l,
        &format!(
            "local x = bigint.new(2) ^ {}; local _ = x * x",
            MAX_BITS - 1
        ),
    );
    assert!(e.contains("over the limit"), "{e}");
    let digits = "9".repeat(100_000);
    let e = error(&l, &format!("local _ = bigint.new('{digits}')"));
    assert!(e.contains("over the limit"), "{e}");
    // ±1 and 0 stay small whatever the exponent.
    assert_eq!(s(&l, "bigint.new(-1) ^ 4000000000001"), "-1");
    assert_eq!(s(&l, "bigint.new(1) ^ 4000000000000"), "1");
}

#[test]
fn metatable_is_protected() {
    let l = lua();
    let v: mlua::Value = l.load("return getmetatable(bigint.new(1))").eval().unwrap();
    assert!(!matches!(v, mlua::Value::Table(_)), "{v:?}");
    assert!(l.load("setmetatable(bigint.new(1), {})").exec().is_err());
}
