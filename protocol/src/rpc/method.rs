//! [`Method`] and [`Request`]: every socket method, its name and its params,
//! decoded by the daemon and encoded by clients from this one definition.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::RpcError;
use super::types::ComputeOptions;

/// A socket method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `auth [token]` → `true`.
    Auth,
    /// `session.open []` or `session.open [home]` → sid.
    SessionOpen,
    /// `session.close [sid]` → nil.
    SessionClose,
    /// `set_input [sid, data]` → nil.
    SetInput,
    /// `get_output [sid]` → value.
    GetOutput,
    /// `set_input_field [sid, key, value]` → nil.
    SetInputField,
    /// `get_output_field [sid, key]` → value.
    GetOutputField,
    /// `set_metadata [sid, meta]` → nil.
    SetMetadata,
    /// `clear_io [sid]` → nil.
    ClearIo,
    /// `get_io_table_id [sid]` → integer.
    GetIoTableId,
    /// `get_table_info [sid]` → [`TableInfo`](crate::api::TableInfo).
    GetTableInfo,
    /// `compute [sid, code]` or `compute [sid, code, options]` →
    /// [`ComputeOutput`](crate::api::ComputeOutput).
    Compute,
    /// `cancel [sid]` → nil.
    Cancel,
    /// `stats []` → [`Stats`](super::Stats).
    Stats,
    /// `home.list []` → array of [`HomeInfo`](crate::api::HomeInfo)
    /// (operator's socket only).
    HomeList,
    /// `home.drop [name]` → bool (whether the home existed).
    HomeDrop,
    /// `home.export [name]` → the home's root table as a value.
    HomeExport,
    /// `home.import [name, value]` → nil.
    HomeImport,
    /// `script.load [code]` → the script's digest (SHA-1, hex), which
    /// `compute` then takes in place of the code on this connection.
    ScriptLoad,
}

impl Method {
    /// Every method.
    pub const ALL: [Method; 19] = [
        Method::Auth,
        Method::SessionOpen,
        Method::SessionClose,
        Method::SetInput,
        Method::GetOutput,
        Method::SetInputField,
        Method::GetOutputField,
        Method::SetMetadata,
        Method::ClearIo,
        Method::GetIoTableId,
        Method::GetTableInfo,
        Method::Compute,
        Method::Cancel,
        Method::Stats,
        Method::HomeList,
        Method::HomeDrop,
        Method::HomeExport,
        Method::HomeImport,
        Method::ScriptLoad,
    ];

    /// The method's name on the wire.
    pub const fn name(self) -> &'static str {
        match self {
            Method::Auth => "auth",
            Method::SessionOpen => "session.open",
            Method::SessionClose => "session.close",
            Method::SetInput => "set_input",
            Method::GetOutput => "get_output",
            Method::SetInputField => "set_input_field",
            Method::GetOutputField => "get_output_field",
            Method::SetMetadata => "set_metadata",
            Method::ClearIo => "clear_io",
            Method::GetIoTableId => "get_io_table_id",
            Method::GetTableInfo => "get_table_info",
            Method::Compute => "compute",
            Method::Cancel => "cancel",
            Method::Stats => "stats",
            Method::HomeList => "home.list",
            Method::HomeDrop => "home.drop",
            Method::HomeExport => "home.export",
            Method::HomeImport => "home.import",
            Method::ScriptLoad => "script.load",
        }
    }

    /// The method named `name`.
    pub fn from_name(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The least and most params the method takes.
    pub const fn arity(self) -> (usize, usize) {
        match self {
            Method::Stats | Method::HomeList => (0, 0),
            Method::Auth | Method::HomeDrop | Method::HomeExport | Method::ScriptLoad => (1, 1),
            Method::HomeImport => (2, 2),
            Method::SessionOpen => (0, 1),
            Method::SetInputField => (3, 3),
            Method::SetInput | Method::GetOutputField | Method::SetMetadata => (2, 2),
            Method::Compute => (2, 3),
            Method::SessionClose
            | Method::GetOutput
            | Method::ClearIo
            | Method::GetIoTableId
            | Method::GetTableInfo
            | Method::Cancel => (1, 1),
        }
    }

    /// Whether the method runs in its session's order (after the calls sent
    /// before it on that session); the others are answered at once.
    pub const fn in_session_order(self) -> bool {
        matches!(
            self,
            Method::SessionClose
                | Method::SetInput
                | Method::GetOutput
                | Method::SetInputField
                | Method::GetOutputField
                | Method::SetMetadata
                | Method::ClearIo
                | Method::Compute
        )
    }
}

/// A request with its params. Data params (input, a field's value,
/// metadata) are the bytes of one MessagePack value each, borrowed from the
/// frame (daemon) or encoded already (client): they go to the store as
/// they are.
#[derive(Debug, Clone, PartialEq)]
pub enum Request<'a> {
    /// Authenticate a TCP connection.
    Auth {
        /// The daemon's token.
        token: String,
    },
    /// Open a session, with a named home or a private one.
    SessionOpen {
        /// The home's name; `None` for a private home.
        home: Option<String>,
    },
    /// Close a session after its earlier calls.
    SessionClose {
        /// The session.
        sid: u64,
    },
    /// Set `_io.input`.
    SetInput {
        /// The session.
        sid: u64,
        /// One MessagePack value.
        data: &'a [u8],
    },
    /// Read `_io.output`.
    GetOutput {
        /// The session.
        sid: u64,
    },
    /// Set `_io.input[key]`.
    SetInputField {
        /// The session.
        sid: u64,
        /// The field.
        key: String,
        /// One MessagePack value.
        value: &'a [u8],
    },
    /// Read `_io.output[key]`.
    GetOutputField {
        /// The session.
        sid: u64,
        /// The field.
        key: String,
    },
    /// Set `_io.meta`.
    SetMetadata {
        /// The session.
        sid: u64,
        /// One MessagePack value.
        meta: &'a [u8],
    },
    /// Clear `_io.input`, `_io.output` and `_io.meta`.
    ClearIo {
        /// The session.
        sid: u64,
    },
    /// The `_io` table's id.
    GetIoTableId {
        /// The session.
        sid: u64,
    },
    /// Ids and sizes of the session's tables.
    GetTableInfo {
        /// The session.
        sid: u64,
    },
    /// Run a Lua chunk.
    Compute {
        /// The session.
        sid: u64,
        /// The chunk.
        code: String,
        /// Per-compute options.
        options: ComputeOptions,
    },
    /// Cancel the session's running compute and those queued before.
    Cancel {
        /// The session.
        sid: u64,
    },
    /// The daemon's counters.
    Stats,
    /// Every named home (operator's socket only).
    HomeList,
    /// Delete a named home (from disk too).
    HomeDrop {
        /// The home.
        name: String,
    },
    /// A named home as one value.
    HomeExport {
        /// The home.
        name: String,
    },
    /// Replace a named home (created if new) with a value.
    HomeImport {
        /// The home.
        name: String,
        /// One MessagePack value: a map (or an array), the new root table.
        value: &'a [u8],
    },
    /// Load a script: `compute` may then send its digest for its code.
    ScriptLoad {
        /// The script's code.
        code: String,
    },
}

/// MessagePack nil, for a param left out.
const NIL: &[u8] = &[0xc0];

/// Decodes one param with serde; `what` names it in the error.
fn param<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, RpcError> {
    rmp_serde::from_slice(bytes).map_err(|e| RpcError::bad_request(format!("{what}: {e}")))
}

fn sid(bytes: &[u8]) -> Result<u64, RpcError> {
    rmp_serde::from_slice(bytes).map_err(|_| {
        RpcError::bad_request("the first param must be the session id, a non-negative integer")
    })
}

impl<'a> Request<'a> {
    /// The request's method.
    pub fn method(&self) -> Method {
        match self {
            Request::Auth { .. } => Method::Auth,
            Request::SessionOpen { .. } => Method::SessionOpen,
            Request::SessionClose { .. } => Method::SessionClose,
            Request::SetInput { .. } => Method::SetInput,
            Request::GetOutput { .. } => Method::GetOutput,
            Request::SetInputField { .. } => Method::SetInputField,
            Request::GetOutputField { .. } => Method::GetOutputField,
            Request::SetMetadata { .. } => Method::SetMetadata,
            Request::ClearIo { .. } => Method::ClearIo,
            Request::GetIoTableId { .. } => Method::GetIoTableId,
            Request::GetTableInfo { .. } => Method::GetTableInfo,
            Request::Compute { .. } => Method::Compute,
            Request::Cancel { .. } => Method::Cancel,
            Request::Stats => Method::Stats,
            Request::HomeList => Method::HomeList,
            Request::HomeDrop { .. } => Method::HomeDrop,
            Request::HomeExport { .. } => Method::HomeExport,
            Request::HomeImport { .. } => Method::HomeImport,
            Request::ScriptLoad { .. } => Method::ScriptLoad,
        }
    }

    /// The session the request names, if it names one.
    pub fn session(&self) -> Option<u64> {
        match *self {
            Request::Auth { .. }
            | Request::SessionOpen { .. }
            | Request::Stats
            | Request::HomeList
            | Request::HomeDrop { .. }
            | Request::HomeExport { .. }
            | Request::HomeImport { .. }
            | Request::ScriptLoad { .. } => None,
            Request::SessionClose { sid }
            | Request::SetInput { sid, .. }
            | Request::GetOutput { sid }
            | Request::SetInputField { sid, .. }
            | Request::GetOutputField { sid, .. }
            | Request::SetMetadata { sid, .. }
            | Request::ClearIo { sid }
            | Request::GetIoTableId { sid }
            | Request::GetTableInfo { sid }
            | Request::Compute { sid, .. }
            | Request::Cancel { sid } => Some(sid),
        }
    }

    /// Bytes of data the request carries (its data params and code), for
    /// the daemon's queue bounds.
    pub fn payload_bytes(&self) -> usize {
        match self {
            Request::SetInput { data, .. } => data.len(),
            Request::SetInputField { key, value, .. } => key.len() + value.len(),
            Request::SetMetadata { meta, .. } => meta.len(),
            Request::Compute { code, options, .. } => {
                code.len() + options.chunk_name.as_ref().map_or(0, String::len)
            }
            Request::GetOutputField { key, .. } => key.len(),
            Request::HomeImport { name, value } => name.len() + value.len(),
            Request::ScriptLoad { code } => code.len(),
            _ => 0,
        }
    }

    /// Decodes the params of `method`, each the bytes of one MessagePack
    /// value (plain data, checked by the frame decoder). A wrong number or
    /// type of params is `BadRequest`, an unknown method `UnknownMethod`.
    pub fn decode(method: &str, params: &[&'a [u8]]) -> Result<Request<'a>, RpcError> {
        let Some(m) = Method::from_name(method) else {
            return Err(RpcError::new(
                super::ErrorKind::UnknownMethod,
                format!("unknown method {method:?}"),
            ));
        };
        let (lo, hi) = m.arity();
        if !(lo..=hi).contains(&params.len()) {
            let wanted = if lo == hi {
                format!("{lo}")
            } else {
                format!("{lo} to {hi}")
            };
            return Err(RpcError::bad_request(format!(
                "{method} takes {wanted} params, got {}",
                params.len()
            )));
        }
        let p = |i: usize| params.get(i).copied().unwrap_or(NIL);
        Ok(match m {
            Method::Auth => Request::Auth {
                token: param(p(0), "the token")?,
            },
            Method::SessionOpen => Request::SessionOpen {
                home: param(p(0), "the home name")?,
            },
            Method::SessionClose => Request::SessionClose { sid: sid(p(0))? },
            Method::SetInput => Request::SetInput {
                sid: sid(p(0))?,
                data: p(1),
            },
            Method::GetOutput => Request::GetOutput { sid: sid(p(0))? },
            Method::SetInputField => Request::SetInputField {
                sid: sid(p(0))?,
                key: param(p(1), "the key")?,
                value: p(2),
            },
            Method::GetOutputField => Request::GetOutputField {
                sid: sid(p(0))?,
                key: param(p(1), "the key")?,
            },
            Method::SetMetadata => Request::SetMetadata {
                sid: sid(p(0))?,
                meta: p(1),
            },
            Method::ClearIo => Request::ClearIo { sid: sid(p(0))? },
            Method::GetIoTableId => Request::GetIoTableId { sid: sid(p(0))? },
            Method::GetTableInfo => Request::GetTableInfo { sid: sid(p(0))? },
            Method::Compute => {
                let options: Option<ComputeOptions> = param(p(2), "the compute options")?;
                let options = options.unwrap_or_default();
                if options.timeout_ms == Some(0) {
                    return Err(RpcError::bad_request("timeout_ms must be at least 1"));
                }
                Request::Compute {
                    sid: sid(p(0))?,
                    code: param(p(1), "the code")?,
                    options,
                }
            }
            Method::Cancel => Request::Cancel { sid: sid(p(0))? },
            Method::Stats => Request::Stats,
            Method::HomeList => Request::HomeList,
            Method::HomeDrop => Request::HomeDrop {
                name: param(p(0), "the home name")?,
            },
            Method::HomeExport => Request::HomeExport {
                name: param(p(0), "the home name")?,
            },
            Method::HomeImport => Request::HomeImport {
                name: param(p(0), "the home name")?,
                value: p(1),
            },
            Method::ScriptLoad => Request::ScriptLoad {
                code: param(p(0), "the code")?,
            },
        })
    }

    /// Encodes `[0, msgid, method, params]` into `out`.
    pub fn encode(&self, msgid: u32, out: &mut Vec<u8>) {
        use rmp::encode as mp;
        // Writing to a Vec cannot fail.
        let _ = mp::write_array_len(out, 4);
        let _ = mp::write_pfix(out, 0);
        let _ = mp::write_uint(out, u64::from(msgid));
        let _ = mp::write_str(out, self.method().name());
        let ser = |out: &mut Vec<u8>, v: &dyn ErasedParam| v.write(out);
        let sid = |out: &mut Vec<u8>, s: u64| drop(mp::write_uint(out, s));
        match self {
            Request::Stats | Request::HomeList => drop(mp::write_array_len(out, 0)),
            Request::HomeDrop { name }
            | Request::HomeExport { name }
            | Request::ScriptLoad { code: name } => {
                let _ = mp::write_array_len(out, 1);
                let _ = mp::write_str(out, name);
            }
            Request::HomeImport { name, value } => {
                let _ = mp::write_array_len(out, 2);
                let _ = mp::write_str(out, name);
                out.extend_from_slice(value);
            }
            Request::Auth { token } => {
                let _ = mp::write_array_len(out, 1);
                let _ = mp::write_str(out, token);
            }
            Request::SessionOpen { home: None } => drop(mp::write_array_len(out, 0)),
            Request::SessionOpen { home: Some(h) } => {
                let _ = mp::write_array_len(out, 1);
                let _ = mp::write_str(out, h);
            }
            Request::SessionClose { sid: s }
            | Request::GetOutput { sid: s }
            | Request::ClearIo { sid: s }
            | Request::GetIoTableId { sid: s }
            | Request::GetTableInfo { sid: s }
            | Request::Cancel { sid: s } => {
                let _ = mp::write_array_len(out, 1);
                sid(out, *s);
            }
            Request::SetInput { sid: s, data: d } | Request::SetMetadata { sid: s, meta: d } => {
                let _ = mp::write_array_len(out, 2);
                sid(out, *s);
                out.extend_from_slice(d);
            }
            Request::SetInputField { sid: s, key, value } => {
                let _ = mp::write_array_len(out, 3);
                sid(out, *s);
                let _ = mp::write_str(out, key);
                out.extend_from_slice(value);
            }
            Request::GetOutputField { sid: s, key } => {
                let _ = mp::write_array_len(out, 2);
                sid(out, *s);
                let _ = mp::write_str(out, key);
            }
            Request::Compute {
                sid: s,
                code,
                options,
            } => {
                let _ = mp::write_array_len(out, 3);
                sid(out, *s);
                let _ = mp::write_str(out, code);
                ser(out, options);
            }
        }
    }
}

/// A param written with serde (struct fields by name).
trait ErasedParam {
    fn write(&self, out: &mut Vec<u8>);
}

impl<T: Serialize> ErasedParam for T {
    fn write(&self, out: &mut Vec<u8>) {
        // A plain struct of options always serializes.
        let _ = rmp_serde::encode::write_named(out, self);
    }
}
