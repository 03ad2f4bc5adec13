//! A small bounded pool of PostgreSQL connections: at most `max` open,
//! opened on demand by the thread that needs one (no thread of its own;
//! a host name is resolved on that thread too),
//! each with its statements prepared once. A caller that finds all `max`
//! in use waits (at most [`WAIT`]); a connection the server closed is
//! dropped when it comes back, and the next caller opens a new one.

use std::borrow::Cow;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use postgres::config::Host;
use postgres::{Client, NoTls};

use super::sql::Statements;
use crate::HomeStoreError;

/// How long a caller waits for a free connection before [`HomeStoreError::Busy`].
const WAIT: Duration = Duration::from_secs(30);

/// How long the server lets a connection sit inside a transaction without
/// a word before it ends the connection (and so the transaction, and its
/// row locks): the bound on how long a daemon that vanished in the middle
/// of a commit (its machine lost, not just its process killed, which the
/// server sees at once) holds back the other daemons' commits to that home.
const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(10);

/// One connection and its prepared statements.
pub struct Conn {
    pub client: Client,
    pub st: Statements,
}

#[derive(Default)]
struct Idle {
    conns: Vec<Conn>,
    /// Connections open (idle or lent).
    open: usize,
}

/// The pool (see the module documentation).
pub struct Conns {
    config: postgres::Config,
    /// The server, for messages (no password).
    pub target: String,
    max: usize,
    idle: Mutex<Idle>,
    freed: Condvar,
}

/// A connection lent by [`Conns::get`]; it goes back on drop.
pub struct Lease {
    pool: Arc<Conns>,
    conn: Option<Conn>,
}

impl std::ops::Deref for Lease {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn.as_ref().expect("a lease holds its connection")
    }
}

impl std::ops::DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("a lease holds its connection")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let conn = self.conn.take();
        let mut idle = self.pool.lock();
        match conn {
            Some(c) if !c.client.is_closed() => idle.conns.push(c),
            _ => idle.open -= 1,
        }
        drop(idle);
        self.pool.freed.notify_one();
    }
}

impl Conns {
    /// A pool of at most `max` connections made with `config`.
    pub fn new(mut config: postgres::Config, target: String, max: usize) -> Conns {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("luapool");
        }
        // A server that vanishes is noticed within about 25 s, not the
        // kernel's 2 hours.
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3);
        Conns {
            config,
            target,
            max: max.max(1),
            idle: Mutex::new(Idle::default()),
            freed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Idle> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection: an idle one, a new one while fewer than `max` are
    /// open, else the next one returned (waiting at most [`WAIT`]).
    pub fn get(self: &Arc<Self>) -> Result<Lease, HomeStoreError> {
        let deadline = Instant::now() + WAIT;
        let mut idle = self.lock();
        loop {
            if let Some(conn) = idle.conns.pop() {
                return Ok(Lease {
                    pool: self.clone(),
                    conn: Some(conn),
                });
            }
            if idle.open < self.max {
                idle.open += 1;
                drop(idle);
                return match self.connect() {
                    Ok(conn) => Ok(Lease {
                        pool: self.clone(),
                        conn: Some(conn),
                    }),
                    Err(e) => {
                        self.lock().open -= 1;
                        self.freed.notify_one();
                        Err(e)
                    }
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(HomeStoreError::Busy {
                    connections: self.max,
                    waited: WAIT,
                });
            }
            idle = self
                .freed
                .wait_timeout(idle, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Opens a connection and prepares its statements.
    fn connect(&self) -> Result<Conn, HomeStoreError> {
        let mut client = self.raw()?;
        let st = Statements::prepare(&mut client)?;
        Ok(Conn { client, st })
    }

    /// The configuration with its host name resolved here, on the calling
    /// thread: left to the client, the lookup would run on a thread the
    /// client's runtime starts for it.
    fn resolved(&self) -> Result<Cow<'_, postgres::Config>, HomeStoreError> {
        let (hosts, addrs) = (self.config.get_hosts(), self.config.get_hostaddrs());
        let [Host::Tcp(name)] = hosts else {
            return Ok(Cow::Borrowed(&self.config));
        };
        if !addrs.is_empty() || name.parse::<IpAddr>().is_ok() {
            return Ok(Cow::Borrowed(&self.config));
        }
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        let addr = (name.as_str(), port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| HomeStoreError::Connect {
                target: self.target.clone(),
                message: format!("cannot resolve the host {name}"),
            })?;
        let mut config = self.config.clone();
        config.hostaddr(addr.ip());
        Ok(Cow::Owned(config))
    }

    /// Opens a connection with the session settings, nothing prepared.
    pub fn raw(&self) -> Result<Client, HomeStoreError> {
        let connect = |e: postgres::Error| HomeStoreError::Connect {
            target: self.target.clone(),
            message: e.to_string(),
        };
        let mut client = self.resolved()?.connect(NoTls).map_err(connect)?;
        client
            .batch_execute(&format!(
                "SET idle_in_transaction_session_timeout = {}",
                IDLE_IN_TRANSACTION.as_millis()
            ))
            .map_err(connect)?;
        Ok(client)
    }
}
