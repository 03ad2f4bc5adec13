//! `luapool call --socket PATH SCRIPT.lua`: one script through a running
//! daemon (`luapool-client`), with the output and exit codes of `luapool
//! run` (`script.rs`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::anyhow;
use clap::Args;

use super::script::{self, ScriptArgs};
use luapool_client::{Client, ClientError, ComputeOptions};

/// Arguments of `luapool call`.
#[derive(Args, Debug)]
pub struct CallArgs {
    /// The daemon's Unix socket (`luapool serve --socket PATH`).
    #[arg(long, value_name = "PATH")]
    socket: PathBuf,
    #[command(flatten)]
    script: ScriptArgs,
    /// Run in the named home: `_home` is shared by every session naming it
    /// and kept by the daemon between calls (default: a private `_home`,
    /// gone after this call).
    #[arg(long, value_name = "NAME")]
    home: Option<String>,
}

/// Connects to the daemon at `socket`; one line saying so if nobody answers.
pub fn connect(socket: &Path) -> anyhow::Result<Client> {
    Client::connect(socket).map_err(|e| match e {
        ClientError::Connect { source, .. } => anyhow!(
            "cannot connect to {}: {source} (is `luapool serve --socket {}` running?)",
            socket.display(),
            socket.display()
        ),
        e => e.into(),
    })
}

/// Runs the script on the daemon; exit 0 on success, 1 if the compute
/// failed, 2 on bad usage or input, or when the daemon cannot be reached
/// or refuses the request.
pub fn call(args: CallArgs) -> anyhow::Result<ExitCode> {
    let job = args.script.load()?;
    let client = connect(&args.socket)?;
    let session = match &args.home {
        Some(name) => client.session_with_home(name)?,
        None => client.session()?,
    };
    if let Some(input) = &job.input {
        session.set_input(input)?;
    }
    if let Some(meta) = &job.meta {
        session.set_metadata(meta)?;
    }
    let opts = ComputeOptions {
        on_log: Some(Box::new(script::print_line)),
        chunk_name: Some(job.chunk_name),
        ..ComputeOptions::default()
    };
    match session.compute_with(&job.code, opts) {
        Ok(out) => args.script.print(out.values, || session.get_output()),
        Err(ClientError::Compute(e)) => Ok(script::failed(&e)),
        Err(e) => Err(e.into()),
    }
}
