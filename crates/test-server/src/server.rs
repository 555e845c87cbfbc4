//! The running server: listeners, one thread per connection, the connection cap, the
//! finished sessions and their records, and a clean stop on drop.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, UNIX_EPOCH};

use ring::rand::{SecureRandom as _, SystemRandom};
use rustls::ServerConfig;
use transcript::{RenderOptions, Transcript};

use crate::sasl::Mechanism;
use crate::session::{self, Recorder, Session};
use crate::store::{Store, StoredMessage, StoredSession};
use crate::{Config, Error, Faults, SessionEnd, tls};

/// How many events a slow subscriber (a browser tab of the web inbox) may fall behind
/// before it is told to reload instead.
const EVENT_BACKLOG: usize = 1024;

/// What changed, for the live subscribers of the web inbox: the ids only, so that sending
/// one costs the SMTP side nothing but a queue push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// A message was stored.
    Message(String),
    /// A session finished.
    Session(String),
    /// Messages were deleted: these ids, or all of them.
    Deleted(Option<Vec<String>>),
    /// The faults changed.
    Faults,
}

/// What may change while the server runs: the faults (set from the web UI or the API) and
/// the AUTH mechanisms they decide. Each session takes the one current when it starts.
#[derive(Debug)]
pub(crate) struct Runtime {
    pub(crate) faults: Faults,
    /// What EHLO offers and AUTH accepts, in order ([`Config::offered_mechanisms`]).
    pub(crate) mechanisms: Vec<Mechanism>,
}

impl Runtime {
    /// Checks `faults` against the rest of `config` as a start would.
    fn new(config: &Config, faults: Faults) -> Result<Runtime, Error> {
        let config = Config {
            faults,
            ..config.clone()
        };
        config.check()?;
        Ok(Runtime {
            mechanisms: config.offered_mechanisms(),
            faults: config.faults,
        })
    }
}

/// How often an idle listener looks at the stop flag.
const ACCEPT_POLL: Duration = Duration::from_millis(10);

/// What the listener and session threads share.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) tls: Arc<ServerConfig>,
    pub(crate) store: Store,
    pub(crate) stop: AtomicBool,
    runtime: Mutex<Arc<Runtime>>,
    events: tokio::sync::broadcast::Sender<Event>,
    /// The SCRAM-SHA-256 salt of this run: random, the same for every user and session.
    pub(crate) scram_salt: [u8; 16],
    /// Where SCRAM's server nonces come from.
    pub(crate) random: SystemRandom,
    ca_pem: String,
    active: AtomicUsize,
    next_connection: AtomicU64,
    /// Every connection accepted, refused ones included.
    accepted: AtomicUsize,
    sessions: Mutex<Vec<Session>>,
    session_finished: Condvar,
    live: Mutex<Live>,
}

impl Shared {
    /// The faults and mechanisms a session starting now gets.
    pub(crate) fn runtime(&self) -> Arc<Runtime> {
        lock(&self.runtime).clone()
    }

    /// Replaces the faults for the sessions that start from now on, if they pass the checks
    /// of a start; on an error nothing changes.
    pub(crate) fn set_faults(&self, faults: Faults) -> Result<(), Error> {
        let runtime = Runtime::new(&self.config, faults)?;
        *lock(&self.runtime) = Arc::new(runtime);
        self.notify(Event::Faults);
        Ok(())
    }

    /// Tells the live subscribers, if any (sending to none is not an error).
    pub(crate) fn notify(&self, event: Event) {
        let _ = self.events.send(event);
    }

    /// A new live subscriber.
    pub(crate) fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Every finished session, for a reader that must not copy them.
    pub(crate) fn sessions(&self) -> MutexGuard<'_, Vec<Session>> {
        lock(&self.sessions)
    }
}

/// The connections being served, so that drop can close them and wait for their threads.
#[derive(Default)]
struct Live {
    streams: HashMap<u64, TcpStream>,
    threads: Vec<JoinHandle<()>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking session is caught and recorded; its data stays usable.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running test server. Dropping it stops the listeners, closes open connections and
/// waits for every thread it started; with `Config::remove_store_on_drop` it then removes
/// the store directory it created.
pub struct Server {
    shared: Arc<Shared>,
    addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    listeners: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("tls_addr", &self.tls_addr)
            .field("store", &self.shared.store.dir())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Binds the listeners, prepares the certificate and the store, and starts serving.
    pub fn start(config: Config) -> Result<Server, Error> {
        config.check()?;
        let random = SystemRandom::new();
        let mut scram_salt = [0; 16];
        random
            .fill(&mut scram_salt)
            .map_err(|_| io::Error::other("the system's random number generator failed"))?;
        let identity = tls::identity(config.certificate.as_ref())?;
        let bind = |addr: SocketAddr| -> Result<(TcpListener, SocketAddr), Error> {
            let listen = |addr| {
                let listener = TcpListener::bind(addr)?;
                listener.set_nonblocking(true)?;
                let local = listener.local_addr()?;
                Ok((listener, local))
            };
            listen(addr).map_err(|source| Error::Listen { addr, source })
        };
        let (plain, addr) = bind(config.listen)?;
        let implicit = config.tls_listen.map(bind).transpose()?;
        let tls_addr = implicit.as_ref().map(|(_, addr)| *addr);
        // What runs is what was bound: port 0 becomes the port the kernel picked (the web
        // inbox's GET /api/v1/server shows these).
        let config = Config {
            listen: addr,
            tls_listen: tls_addr,
            ..config
        };
        // The store last: a start that fails leaves no fresh directory behind.
        let store = Store::open(config.store.clone(), config.sync)?;
        let runtime = Runtime::new(&config, config.faults.clone())?;
        let shared = Arc::new(Shared {
            runtime: Mutex::new(Arc::new(runtime)),
            events: tokio::sync::broadcast::channel(EVENT_BACKLOG).0,
            config,
            tls: identity.config,
            ca_pem: identity.ca_pem,
            store,
            stop: AtomicBool::new(false),
            scram_salt,
            random,
            active: AtomicUsize::new(0),
            next_connection: AtomicU64::new(0),
            accepted: AtomicUsize::new(0),
            sessions: Mutex::new(Vec::new()),
            session_finished: Condvar::new(),
            live: Mutex::new(Live::default()),
        });
        let mut server = Server {
            shared,
            addr,
            tls_addr,
            listeners: Vec::new(),
        };
        let mut listeners = vec![(plain, false)];
        listeners.extend(implicit.map(|(listener, _)| (listener, true)));
        for (listener, implicit_tls) in listeners {
            let shared = server.shared.clone();
            let handle = thread::Builder::new()
                .name("test-server-listen".to_owned())
                .spawn(move || accept_loop(&shared, &listener, implicit_tls))?;
            server.listeners.push(handle);
        }
        Ok(server)
    }

    /// The address of the plaintext (STARTTLS) listener.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address of the implicit TLS listener, if one was configured.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// The PEM a client must trust for this run: the generated CA certificate, or the
    /// given certificate chain.
    pub fn ca_pem(&self) -> &str {
        &self.shared.ca_pem
    }

    /// The directory messages are stored in.
    pub fn store_dir(&self) -> &Path {
        self.shared.store.dir()
    }

    /// The configuration the server runs with: its `listen` and `tls_listen` are the bound
    /// addresses, and its `faults` are those it started with (see [`Server::faults`]).
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The faults sessions starting now get.
    pub fn faults(&self) -> Faults {
        self.shared.runtime().faults.clone()
    }

    /// Replaces the faults for the sessions that start from now on (those under way keep
    /// theirs). Faults that contradict each other or the configuration are refused, as at a
    /// start, and nothing changes.
    pub fn set_faults(&self, faults: Faults) -> Result<(), Error> {
        self.shared.set_faults(faults)
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The messages accepted so far by this run, in the order they got their `250`.
    pub fn messages(&self) -> Vec<StoredMessage> {
        self.shared.store.messages()
    }

    /// How many connections have been accepted so far (each becomes a session when it
    /// ends, those refused by the connection cap included).
    pub fn connections(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Every finished connection, in the order they finished, including those that stored
    /// nothing and those refused by the connection cap.
    pub fn sessions(&self) -> Vec<Session> {
        lock(&self.shared.sessions).clone()
    }

    /// Waits until at least `n` connections have finished, or `timeout` passed, and
    /// returns the finished sessions (fewer than `n` after a timeout). Each session's
    /// record is on disk before it is returned here.
    pub fn wait_for_sessions(&self, n: usize, timeout: Duration) -> Vec<Session> {
        self.wait_for(n, timeout, 0)
    }

    /// Waits until more than `seen` connections have finished, or `timeout` passed, and
    /// returns the sessions after the first `seen` (none after a timeout): what a loop that
    /// reports each finished session needs, without copying the earlier ones again.
    pub fn wait_for_sessions_after(&self, seen: usize, timeout: Duration) -> Vec<Session> {
        self.wait_for(seen.saturating_add(1), timeout, seen)
    }

    fn wait_for(&self, n: usize, timeout: Duration, skip: usize) -> Vec<Session> {
        let deadline = Instant::now() + timeout;
        let mut sessions = lock(&self.shared.sessions);
        while sessions.len() < n {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            sessions = self
                .shared
                .session_finished
                .wait_timeout(sessions, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        sessions.iter().skip(skip).cloned().collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for handle in self.listeners.drain(..) {
            let _ = handle.join();
        }
        let threads = {
            let mut live = lock(&self.shared.live);
            for stream in live.streams.values() {
                let _ = stream.shutdown(Shutdown::Both);
            }
            std::mem::take(&mut live.threads)
        };
        for handle in threads {
            let _ = handle.join();
        }
        // Every thread that could write into the store has ended.
        let store = &self.shared.store;
        if self.shared.config.remove_store_on_drop && store.created() {
            let _ = std::fs::remove_dir_all(store.dir());
        }
    }
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener, implicit_tls: bool) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((tcp, peer)) => accept(shared, tcp, peer, implicit_tls),
            // WouldBlock: nothing pending. Other errors (such as running out of file
            // descriptors) are transient for a listener: wait and try again.
            Err(_) => thread::sleep(ACCEPT_POLL),
        }
    }
}

/// Saves the session's record, then makes the session visible to `sessions()` and the
/// waiters. `sync` is false on the listener thread, which must never wait for the disk.
fn finish(shared: &Shared, mut session: Session, sync: bool) {
    let record = StoredSession {
        id: session.id.clone(),
        peer: session.peer.clone(),
        started_unix_ms: session
            .started
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        duration_ms: u64::try_from(session.duration.as_millis()).unwrap_or(u64::MAX),
        tls: session.tls,
        message_ids: session.message_ids.clone(),
        reason: session.reason.kind().to_owned(),
        reason_text: session.reason.to_string(),
    };
    // The reason is the last note of the saved transcript; the one in memory stays as the
    // dialogue recorded it.
    let mut text = session.transcript.render_text(RenderOptions::default());
    let mut ending = Transcript::new();
    ending.note(format!("session ended: {}", session.reason));
    text.push_str(&ending.render_text(RenderOptions::default()));
    session.transcript_file = shared
        .store
        .save_session(&record, &text, sync)
        .map_err(|e| {
            format!(
                "cannot save the session transcript in {}: {e}",
                shared
                    .store
                    .dir()
                    .join(crate::store::SESSIONS_DIR)
                    .display()
            )
        });
    let id = session.id.clone();
    lock(&shared.sessions).push(session);
    shared.session_finished.notify_all();
    shared.notify(Event::Session(id));
}

/// Decrements the active connection count when a session thread ends, even by panic.
struct ActiveGuard<'a>(&'a AtomicUsize);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn accept(shared: &Arc<Shared>, tcp: TcpStream, peer: SocketAddr, implicit_tls: bool) {
    shared.accepted.fetch_add(1, Ordering::SeqCst);
    let _ = tcp.set_nonblocking(false);
    let cap = shared.config.max_connections;
    let active = shared.active.fetch_add(1, Ordering::SeqCst);
    if cap > 0 && active >= cap {
        shared.active.fetch_sub(1, Ordering::SeqCst);
        refuse(shared, tcp, peer, implicit_tls);
        return;
    }
    let id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
    let session_id = shared.store.next_session_id();
    let mut live = lock(&shared.live);
    live.threads.retain(|handle| !handle.is_finished());
    if let Ok(clone) = tcp.try_clone() {
        live.streams.insert(id, clone);
    }
    let thread_shared = shared.clone();
    let spawned = thread::Builder::new()
        .name("test-server-session".to_owned())
        // A session needs little stack; a small one lets a thousand idle connections cost
        // little memory (a slowloris does not starve the machine).
        .stack_size(256 * 1024)
        .spawn(move || {
            let shared = thread_shared;
            let active = ActiveGuard(&shared.active);
            let mut recorder = Recorder::new();
            let served = catch_unwind(AssertUnwindSafe(|| {
                session::serve(&shared, tcp, peer, implicit_tls, &mut recorder)
            }));
            let reason = served.unwrap_or_else(|_| {
                recorder.note("internal error: the session panicked; connection dropped");
                SessionEnd::InternalError
            });
            lock(&shared.live).streams.remove(&id);
            // Free the slot before the session is visible, so that whoever waits for it
            // can connect again at once.
            drop(active);
            let session = recorder.finish(session_id, peer.to_string(), reason);
            finish(&shared, session, shared.config.sync);
        });
    match spawned {
        Ok(handle) => live.threads.push(handle),
        Err(_) => {
            // The thread never ran: undo what it would have undone.
            if let Some(stream) = live.streams.remove(&id) {
                let _ = stream.shutdown(Shutdown::Both);
            }
            shared.active.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Beyond `max_connections`: `421 4.3.2` and close (RFC 5321 §3.8). On the implicit TLS
/// listener a plaintext reply would be garbage to the client, so it is closed silently.
fn refuse(shared: &Shared, mut tcp: TcpStream, peer: SocketAddr, implicit_tls: bool) {
    let mut recorder = Recorder::new();
    if implicit_tls {
        recorder.note("too many connections: closed before the TLS handshake");
    } else {
        let reply = b"421 4.3.2 Too many connections, try again later\r\n";
        let _ = tcp.set_write_timeout(Some(Duration::from_secs(1)));
        let _ = tcp.write_all(reply);
        recorder.server(reply);
    }
    let _ = tcp.shutdown(Shutdown::Both);
    let reason = SessionEnd::ConnectionCap {
        limit: shared.config.max_connections,
    };
    let id = shared.store.next_session_id();
    finish(shared, recorder.finish(id, peer.to_string(), reason), false);
}
