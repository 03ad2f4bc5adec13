//! Scripts by digest in the embedded API: [`Pool::load_script`] gives
//! Redis's digest, a compute takes it in place of the code while a handle
//! lives, an unknown digest is `NoScript`, and the store is bounded.

use luapool_supervisor::{script_digest, ComputeError, Pool, ScriptError};

use crate::common::pool;

#[test]
fn a_loaded_script_runs_by_digest_while_its_handle_lives() {
    let p = pool();
    let s = p.session();
    let code = "_io.output = (_io.output or 0) + 1 return _io.output";
    let script = p.load_script(code).unwrap();
    assert_eq!(script.digest(), script_digest(code));
    let n = |d: &str| s.compute(d).unwrap().value::<i64>(0).unwrap();
    assert_eq!(n(script.digest()), 1);
    assert_eq!(n(&script.digest().to_ascii_uppercase()), 2);
    let digest = script.digest().to_string();
    drop(script);
    assert_eq!(
        s.compute(&digest).unwrap_err(),
        ComputeError::NoScript { digest }
    );
    // Forty hex digits are never compiled as Lua: a digest, unknown.
    let e = s.compute(&"a".repeat(40)).unwrap_err();
    assert!(matches!(e, ComputeError::NoScript { .. }), "{e:?}");
}

#[test]
fn the_script_store_is_bounded_in_scripts_and_bytes() {
    let p = Pool::builder()
        .workers(1)
        .max_scripts(2, 64)
        .build()
        .unwrap();
    let a = p.load_script("return 1").unwrap();
    let _b = p.load_script("return 2").unwrap();
    // The same code again is the same script, not a third.
    let again = p.load_script("return 1").unwrap();
    assert_eq!(again.digest(), a.digest());
    assert_eq!(p.scripts_loaded(), (2, 16));
    let e = p.load_script("return 3").unwrap_err();
    assert!(
        matches!(
            e,
            ScriptError::Limit {
                limit: "max_scripts",
                value: 2,
                ..
            }
        ),
        "{e:?}"
    );
    drop((a, again));
    let e = p
        .load_script(&format!("return '{}'", "x".repeat(60)))
        .unwrap_err();
    assert!(
        matches!(
            e,
            ScriptError::Limit {
                limit: "script_bytes",
                value: 64,
                ..
            }
        ),
        "{e:?}"
    );
    p.load_script("return 3").unwrap();
}
