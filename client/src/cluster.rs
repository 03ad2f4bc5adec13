//! [`Cluster`]: sessions spread over several daemons that share their
//! homes (a PostgreSQL home store, `docs/deploy.md`), placed by home name
//! with rendezvous hashing, with failover when a daemon is down.
//!
//! Placement: for a home, every daemon gets the score
//! [`score`]`(daemon id, home)`, and the daemons are tried from the highest
//! score down ([`rank`]). So a home's sessions land on one daemon, where
//! its cache is warm, from every client that lists the same daemons; when a
//! daemon leaves the list only its homes move, each to its next daemon.
//! `docs/protocol.md` ("Many daemons") gives the hash for other clients.
//!
//! Failover: opening a session tries the daemons in that order; a daemon
//! that refuses the connection, closes it, or is shutting down is passed
//! over (and tried last for the next second), and the next one opens the
//! session. A call on a session whose daemon dies fails with
//! [`ClientError::Disconnected`]: it is not repeated elsewhere (a compute
//! may or may not have been committed there, and the session's `_io` was
//! that daemon's); open a new session, which goes to the next daemon.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::ClientError;
use crate::session::{Client, Session};
use crate::ErrorKind;

/// How long a daemon that failed is tried only after the others.
const DOWN_FOR: Duration = Duration::from_secs(1);

/// Where a daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A Unix socket.
    Unix(PathBuf),
    /// Loopback TCP (`host:port`) with the daemon's token.
    Tcp {
        /// `host:port`.
        addr: String,
        /// The token of `auth`.
        token: String,
    },
}

impl Endpoint {
    /// The daemon's id for placement: the socket path, or `host:port`.
    pub fn id(&self) -> String {
        match self {
            Endpoint::Unix(p) => p.to_string_lossy().into_owned(),
            Endpoint::Tcp { addr, .. } => addr.clone(),
        }
    }

    fn connect(&self) -> Result<Client, ClientError> {
        match self {
            Endpoint::Unix(p) => Client::connect(p),
            Endpoint::Tcp { addr, token } => Client::connect_tcp(addr.as_str(), token),
        }
    }
}

impl<P: Into<PathBuf>> From<P> for Endpoint {
    fn from(p: P) -> Endpoint {
        Endpoint::Unix(p.into())
    }
}

struct Node {
    id: String,
    endpoint: Endpoint,
    /// The connection, shared by the sessions opened on it.
    client: Mutex<Option<Arc<Client>>>,
    /// Failed at this moment: tried after the others until `DOWN_FOR` later.
    failed_at: Mutex<Option<Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Node {
    fn is_down(&self) -> bool {
        lock(&self.failed_at).is_some_and(|t| t.elapsed() < DOWN_FOR)
    }

    /// The connection, made if there is none or it was lost.
    fn client(&self) -> Result<Arc<Client>, ClientError> {
        let mut slot = lock(&self.client);
        if let Some(c) = slot.as_ref().filter(|c| c.is_connected()) {
            return Ok(c.clone());
        }
        *slot = None;
        let c = Arc::new(self.endpoint.connect()?);
        *slot = Some(c.clone());
        Ok(c)
    }

    fn failed(&self) {
        *lock(&self.client) = None;
        *lock(&self.failed_at) = Some(Instant::now());
    }
}

/// Several daemons that share their homes, each session placed on one of
/// them (see the module documentation). `Send + Sync`: share it between
/// threads; each daemon gets one connection, shared by its sessions.
pub struct Cluster {
    nodes: Vec<Node>,
    /// Where the next private session starts looking.
    next_private: AtomicUsize,
}

impl Cluster {
    /// The daemons at `endpoints` (Unix socket paths, or [`Endpoint`]s),
    /// each identified by [`Endpoint::id`]. Every client must list the same
    /// ids to place homes alike (their order does not matter). Connects
    /// lazily: a daemon that is down now is simply passed over.
    pub fn new<E: Into<Endpoint>>(endpoints: impl IntoIterator<Item = E>) -> Cluster {
        Cluster::with_ids(endpoints.into_iter().map(|e| {
            let e = e.into();
            (e.id(), e)
        }))
    }

    /// The daemons at these endpoints, each with the id given for placement
    /// (when clients reach one daemon by different addresses).
    pub fn with_ids(daemons: impl IntoIterator<Item = (String, Endpoint)>) -> Cluster {
        Cluster {
            nodes: daemons
                .into_iter()
                .map(|(id, endpoint)| Node {
                    id,
                    endpoint,
                    client: Mutex::new(None),
                    failed_at: Mutex::new(None),
                })
                .collect(),
            next_private: AtomicUsize::new(0),
        }
    }

    /// The daemons' ids, in the order given.
    pub fn ids(&self) -> Vec<&str> {
        self.nodes.iter().map(|n| n.id.as_str()).collect()
    }

    /// Opens a session bound to the named home on its daemon, or on the
    /// next one in its [`rank`] if that one is down.
    pub fn session_with_home(&self, name: &str) -> Result<Session, ClientError> {
        self.open(Some(name)).map(|(s, _)| s)
    }

    /// Opens a session with a private home (in memory, on one daemon):
    /// the daemons take them in turn.
    pub fn session(&self) -> Result<Session, ClientError> {
        self.open(None).map(|(s, _)| s)
    }

    /// Opens a session (bound to `home`, or private) and says on which
    /// daemon: its index in the list given.
    pub fn open(&self, home: Option<&str>) -> Result<(Session, usize), ClientError> {
        let order: Vec<usize> = match home {
            Some(h) => rank(&self.ids(), h),
            None => {
                let n = self.nodes.len().max(1);
                let first = self.next_private.fetch_add(1, Ordering::Relaxed) % n;
                (0..self.nodes.len()).map(|i| (first + i) % n).collect()
            }
        };
        // Daemons that failed a moment ago go last.
        let (up, down): (Vec<usize>, Vec<usize>) =
            order.into_iter().partition(|&i| !self.nodes[i].is_down());
        let mut tried = Vec::new();
        for i in up.into_iter().chain(down) {
            let node = &self.nodes[i];
            let opened = node.client().and_then(|c| match home {
                Some(h) => c.session_with_home(h),
                None => c.session(),
            });
            match opened {
                Ok(s) => return Ok((s, i)),
                Err(e) if is_down(&e) => {
                    node.failed();
                    tried.push(format!("{}: {e}", node.id));
                }
                Err(e) => return Err(e),
            }
        }
        Err(ClientError::NoDaemon {
            tried: if tried.is_empty() {
                "no daemons listed".into()
            } else {
                tried.join("; ")
            },
        })
    }
}

/// Whether `e` means the daemon is not there to open a session: try the next.
fn is_down(e: &ClientError) -> bool {
    match e {
        ClientError::Connect { .. } | ClientError::Io(_) | ClientError::Disconnected(_) => true,
        ClientError::Daemon { kind, .. } => *kind == ErrorKind::ShuttingDown,
        _ => false,
    }
}

/// FNV-1a, 64 bits.
fn fnv1a64(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// MurmurHash3's 64-bit finalizer: every input bit moves every output bit.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

/// The rendezvous score of daemon `id` for home `home`:
/// `fmix64(fnv1a64(utf8(id) ++ [0x00] ++ utf8(home)))`.
pub fn score(id: &str, home: &str) -> u64 {
    fmix64(fnv1a64(&[id.as_bytes(), &[0], home.as_bytes()]))
}

/// The daemons (indices into `ids`) in the order a session of `home` tries
/// them: by [`score`], highest first; equal scores by id, then index.
pub fn rank(ids: &[&str], home: &str) -> Vec<usize> {
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_by(|&a, &b| {
        score(ids[b], home)
            .cmp(&score(ids[a], home))
            .then(ids[a].cmp(ids[b]))
            .then(a.cmp(&b))
    });
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectors of docs/protocol.md ("Many daemons"): other clients check
    /// their hash against these.
    #[test]
    fn the_score_matches_the_documented_vectors() {
        assert_eq!(fnv1a64(&[b""]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        let vectors = [
            ("/run/luapool/a.sock", "counters", 0x54ae_5544_5fea_e501_u64),
            ("/run/luapool/b.sock", "counters", 0x85dd_8272_62ef_ab4a),
            ("10.0.0.7:7070", "user:42", 0x10bc_1a52_97a8_6e51),
            ("d", "", 0xb322_dc8b_208b_0f73),
        ];
        for (id, home, want) in vectors {
            assert_eq!(score(id, home), want, "score({id:?}, {home:?})");
        }
        let ids = ["/run/luapool/a.sock", "/run/luapool/b.sock"];
        assert_eq!(rank(&ids, "counters"), [1, 0]);
    }

    #[test]
    fn homes_spread_evenly_and_move_only_from_a_daemon_that_leaves() {
        let ids = ["a.sock", "b.sock", "c.sock"];
        let mut counts = [0usize; 3];
        let homes: Vec<String> = (0..3000).map(|i| format!("home-{i}")).collect();
        for h in &homes {
            counts[rank(&ids, h)[0]] += 1;
        }
        for c in counts {
            assert!((800..1200).contains(&c), "uneven spread: {counts:?}");
        }
        // Without c.sock, a's and b's homes stay; c's go to their second.
        let two = ["a.sock", "b.sock"];
        for h in &homes {
            let r3 = rank(&ids, h);
            let r2 = rank(&two, h);
            let second = if r3[0] == 2 { r3[1] } else { r3[0] };
            assert_eq!(r2[0], second, "{h}");
        }
    }

    #[test]
    fn the_order_of_the_list_does_not_change_placement() {
        let a = ["x", "y", "z"];
        let b = ["z", "x", "y"];
        for i in 0..200 {
            let h = format!("h{i}");
            assert_eq!(a[rank(&a, &h)[0]], b[rank(&b, &h)[0]]);
        }
    }
}
