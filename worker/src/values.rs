//! Big integers and functions between Lua and the store.
//!
//! Out of Lua ([`Values::function_text`], [`big_text`]): a `bigint` is its
//! decimal text; a function is its source text, cut out of the chunk that
//! defined it (`func_source.rs`). Lua keeps no function's text, only its
//! chunk's `source` and its lines: the compute's own chunk is the code it
//! was started with; a chunk `load`ed from a string without a name has the
//! string itself as its `source`; so has every function compiled from
//! stored text here (its chunk is named by its own text), so storing it
//! again works. A C function, a function of a chunk loaded under a name,
//! and a function with upvalues other than `_ENV` (locals of an enclosing
//! function, which the text cannot carry) are refused, the upvalue named.
//!
//! Into Lua ([`Values::to_lua`]): a big integer becomes a `bigint`; a
//! function's text is checked to be one function expression and compiled
//! in the reading compute's sandbox environment (its globals, its limits:
//! the compile and the closure's creation run inside the compute, counted
//! like any of its code), once per compute and text. Nothing of this
//! outlives the compute ([`Values::end`]).
//!
//! The C code that builds Lua values from replies reaches [`Values::to_lua`]
//! through a Lua function in the registry ([`push_converted`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use luapool_protocol::ext_value::{EXT_BIGINT, EXT_FUNCTION, MAX_FUNCTION_BYTES};
use mlua::{ffi, ChunkMode, Function, Lua, Table};

use crate::bigint::Big;
use crate::func_source::{is_function_expression, Chunk, FuncSourceError};

/// What a compute has found and compiled so far.
#[derive(Default)]
struct State {
    /// The compute's code and chunk name.
    code: Vec<u8>,
    chunk_name: String,
    /// The compute's global environment (stored functions see it).
    env: Option<Table>,
    /// Functions compiled from stored text, by text.
    compiled: HashMap<Box<[u8]>, Function>,
    /// Chunks split into tokens, by their `source`.
    chunks: HashMap<Box<[u8]>, Rc<Chunk>>,
    /// Texts cut out of chunks: (chunk, first line, last line, parameters,
    /// vararg) → text.
    texts: HashMap<(usize, usize, usize, usize, bool), Rc<str>>,
}

/// The per-compute state of the conversions.
#[derive(Default)]
pub struct Values {
    state: RefCell<State>,
}

/// What Lua says of a function.
struct Info {
    c: bool,
    main: bool,
    source: Vec<u8>,
    first: usize,
    last: usize,
    nparams: usize,
    vararg: bool,
    /// An upvalue other than `_ENV`, by name.
    upvalue: Option<String>,
}

fn info(lua: &Lua, f: &Function) -> mlua::Result<Info> {
    let mut out = None;
    // SAFETY: the function is argument 1; `lua_getinfo` pops the copy
    // pushed for it (">"), and each `lua_getupvalue` that finds an upvalue
    // pushes one value, popped at once (stack space checked). Nothing here
    // raises but `luaL_checkstack`, before any Rust value needs dropping.
    unsafe {
        lua.exec_raw::<()>(f, |l| {
            ffi::luaL_checkstack(l, 2, c"luapool: stack".as_ptr());
            let mut ar: ffi::lua_Debug = std::mem::zeroed();
            ffi::lua_pushvalue(l, 1);
            ffi::lua_getinfo(l, c">Su".as_ptr(), &mut ar);
            let what = std::ffi::CStr::from_ptr(ar.what).to_bytes();
            let mut upvalue = None;
            for i in 1..=i32::from(ar.nups) {
                let name = ffi::lua_getupvalue(l, 1, i);
                if name.is_null() {
                    break;
                }
                ffi::lua_pop(l, 1);
                let name = std::ffi::CStr::from_ptr(name).to_string_lossy();
                if name != "_ENV" && upvalue.is_none() && what != b"C" {
                    upvalue = Some(if name.is_empty() {
                        "?".into()
                    } else {
                        name.into_owned()
                    });
                }
            }
            let source = match ar.source.is_null() {
                true => Vec::new(),
                false => std::slice::from_raw_parts(ar.source.cast::<u8>(), ar.srclen).to_vec(),
            };
            out = Some(Info {
                c: what == b"C",
                main: what == b"main",
                source,
                first: ar.linedefined.max(0) as usize,
                last: ar.lastlinedefined.max(0) as usize,
                nparams: usize::from(ar.nparams),
                vararg: ar.isvararg != 0,
                upvalue,
            });
            ffi::lua_settop(l, 0);
        })?;
    }
    out.ok_or_else(|| mlua::Error::runtime("no debug information"))
}

/// A bigint's text, if `v` is a bigint.
pub fn big_text(v: &mlua::AnyUserData) -> Option<String> {
    v.borrow::<Big>().ok().map(|b| b.to_decimal())
}

impl Values {
    /// Starts a compute: its code, chunk name and environment.
    pub fn begin(&self, code: &[u8], chunk_name: &str, env: Table) {
        let mut s = self.state.borrow_mut();
        *s = State::default();
        s.code = code.to_vec();
        s.chunk_name = chunk_name.to_string();
        s.env = Some(env);
    }

    /// Ends a compute: forgets all of it (its environment, its compiled
    /// functions), so the next compute observes none of it.
    pub fn end(&self) {
        *self.state.borrow_mut() = State::default();
    }

    /// The source text of `f`, as a function expression, to store; or why
    /// it cannot be stored.
    pub fn function_text(&self, lua: &Lua, f: &Function) -> Result<Rc<str>, String> {
        let info = info(lua, f).map_err(|e| crate::compute::message_of(&e))?;
        // The sandbox's own Lua functions (`print`, `pcall`, …) come from
        // chunks named `=luapool-…`.
        if info.c || info.source.starts_with(b"=luapool-") {
            return Err(
                "a built-in or C function (print, string.upper, …) cannot be stored; \
                 only functions written in Lua by the script can"
                    .into(),
            );
        }
        if let Some(name) = info.upvalue {
            return Err(format!(
                "a function with upvalues cannot be stored: it uses '{name}', a local \
                 variable of an enclosing function, which its text cannot carry (only \
                 globals are kept, through _ENV); pass '{name}' as an argument, make it \
                 global, or store it in an external table"
            ));
        }
        let chunk = self.state.borrow_mut().chunk(&info.source)?;
        let key = (
            Rc::as_ptr(&chunk) as *const u8 as usize,
            info.first,
            info.last,
            info.nparams,
            info.vararg,
        );
        if let Some(t) = self.state.borrow().texts.get(&key) {
            return Ok(t.clone());
        }
        let text = if info.main {
            // A whole chunk `load`ed from a string: a vararg function.
            let mut t = b"function(...) ".to_vec();
            t.extend_from_slice(chunk.src());
            t.extend_from_slice(b"\nend");
            t
        } else {
            let fits = chunk.candidates(info.first, info.last, info.nparams, info.vararg);
            let (first, last) = (info.first, info.last);
            let not_found = |e: FuncSourceError| format!("cannot find its source: {e}");
            match fits.len() {
                0 => {
                    return Err(not_found(FuncSourceError::NotFound {
                        first,
                        last,
                        nparams: info.nparams,
                    }))
                }
                1 => fits.into_iter().next().unwrap_or_default(),
                count => pick(lua, f, first, fits)
                    .ok_or_else(|| not_found(FuncSourceError::Ambiguous { first, last, count }))?,
            }
        };
        // What a reader will accept (a `load`ed chunk that ends inside a
        // comment would not be): refused now rather than when read.
        if !is_function_expression(&text) {
            return Err("its source does not read as one function expression".into());
        }
        if text.len() > MAX_FUNCTION_BYTES {
            return Err(format!(
                "its source of {} bytes is over the limit of {MAX_FUNCTION_BYTES} bytes",
                text.len()
            ));
        }
        let text: Rc<str> = String::from_utf8(text)
            .map_err(|_| String::from("its source is not UTF-8"))?
            .into();
        self.state.borrow_mut().texts.insert(key, text.clone());
        Ok(text)
    }

    /// The Lua value of a stored big integer (`EXT_BIGINT`) or function
    /// (`EXT_FUNCTION`) given its text.
    pub fn to_lua(&self, lua: &Lua, ty: i8, text: &[u8]) -> mlua::Result<mlua::Value> {
        match ty {
            EXT_BIGINT => Ok(mlua::Value::UserData(
                lua.create_userdata(Big::from_decimal(text)?)?,
            )),
            EXT_FUNCTION => self.compile(lua, text).map(mlua::Value::Function),
            _ => Err(mlua::Error::runtime("luapool: an unknown stored value")),
        }
    }

    fn compile(&self, lua: &Lua, text: &[u8]) -> mlua::Result<Function> {
        let env = {
            let s = self.state.borrow();
            if let Some(f) = s.compiled.get(text) {
                return Ok(f.clone());
            }
            s.env.clone()
        };
        let env = env.ok_or_else(|| mlua::Error::runtime("luapool: no compute is running"))?;
        let bad = |why: &str| {
            let shown: String = String::from_utf8_lossy(&text[..text.len().min(40)]).into_owned();
            mlua::Error::runtime(format!("a stored function {why}: {shown:?}"))
        };
        let text_str = std::str::from_utf8(text).map_err(|_| bad("is not UTF-8"))?;
        if !is_function_expression(text) {
            return Err(bad(
                "is not one function expression `function(...) ... end`",
            ));
        }
        // The chunk is named by its own text, so that the functions it
        // makes can be stored again (see the module documentation).
        let chunk = format!("return {text_str}");
        let make = lua
            .load(&chunk)
            .set_name(chunk.clone())
            .set_mode(ChunkMode::Text)
            .set_environment(env)
            .into_function()
            .map_err(|e| {
                bad(&format!(
                    "does not compile ({})",
                    crate::compute::message_of(&e)
                ))
            })?;
        drop(chunk);
        let f: Function = make.call(())?;
        self.state
            .borrow_mut()
            .compiled
            .insert(text.into(), f.clone());
        Ok(f)
    }
}

/// Of several texts that fit `f`'s lines and parameters (functions nested
/// on one line, `function(k) return function(y) … end end`), the one that
/// compiles to `f`'s code: each is compiled at `f`'s line and dumped
/// (stripped) to compare with `f`'s dump, exactly, else by length (an
/// upvalue's index may differ where the function was nested). `None`: no
/// one candidate matches.
fn pick(lua: &Lua, f: &Function, first: usize, fits: Vec<Vec<u8>>) -> Option<Vec<u8>> {
    let want = f.dump(true);
    let env = lua.create_table().ok()?;
    let dumps: Vec<Vec<u8>> = fits
        .iter()
        .map(|text| {
            if !is_function_expression(text) {
                return Vec::new();
            }
            let mut chunk = "\n".repeat(first.saturating_sub(1)).into_bytes();
            chunk.extend_from_slice(b"return ");
            chunk.extend_from_slice(text);
            lua.load(chunk)
                .set_mode(ChunkMode::Text)
                .set_environment(env.clone())
                .call::<Function>(())
                .map(|g| g.dump(true))
                .unwrap_or_default()
        })
        .collect();
    let one = |same: &dyn Fn(&Vec<u8>) -> bool| {
        let mut hits = dumps.iter().enumerate().filter(|(_, d)| same(d));
        match (hits.next(), hits.next()) {
            (Some((i, _)), None) => Some(fits[i].clone()),
            _ => None,
        }
    };
    one(&|d| *d == want).or_else(|| one(&|d| d.len() == want.len()))
}

impl State {
    /// The chunk whose `source` Lua reports as `source`, split into tokens.
    fn chunk(&mut self, source: &[u8]) -> Result<Rc<Chunk>, String> {
        if let Some(c) = self.chunks.get(source) {
            return Ok(c.clone());
        }
        let text = if source == self.chunk_name.as_bytes() {
            &self.code[..]
        } else if source.starts_with(b"=") || source.starts_with(b"@") {
            return Err(format!(
                "its source text is unknown: it was loaded under the chunk name {:?} \
                 (load it without a name to store its functions)",
                String::from_utf8_lossy(&source[1..])
            ));
        } else {
            source
        };
        let c = Rc::new(Chunk::new(text));
        self.chunks.insert(source.into(), c.clone());
        Ok(c)
    }
}

/// Registers the function the C code calls through [`push_converted`].
pub fn install(lua: &Lua, ext: &Rc<crate::ext::Ext>) -> mlua::Result<()> {
    let ext = ext.clone();
    let f = lua.create_function(move |lua, (ty, text): (i8, mlua::String)| {
        ext.values.to_lua(lua, ty, &text.as_bytes())
    })?;
    // SAFETY: stores argument 1 in the registry under a private key.
    unsafe {
        lua.exec_raw::<()>(f, |l| {
            ffi::lua_rawsetp(
                l,
                ffi::LUA_REGISTRYINDEX,
                &crate::statics::VALUE_FN_ADDR as *const u8 as *const std::ffi::c_void,
            );
        })
    }
}

/// Replaces the string at the top of the stack (a stored value's text)
/// with the value of type `ty` (`EXT_BIGINT`, `EXT_FUNCTION`) it is the
/// text of. May raise a Lua error (a bad text, memory, a stop).
///
/// # Safety
/// `l` is a running Lua state of the worker, after [`install`], with a
/// string at the top of its stack; the caller holds nothing that needs
/// dropping across the call (a Lua error `longjmp`s).
pub unsafe fn push_converted(l: *mut ffi::lua_State, ty: i8) {
    ffi::luaL_checkstack(l, 2, c"luapool: stack".as_ptr());
    ffi::lua_rawgetp(
        l,
        ffi::LUA_REGISTRYINDEX,
        &crate::statics::VALUE_FN_ADDR as *const u8 as *const std::ffi::c_void,
    );
    ffi::lua_pushinteger(l, ffi::lua_Integer::from(ty));
    ffi::lua_rotate(l, -3, 2);
    ffi::lua_call(l, 2, 1);
}
