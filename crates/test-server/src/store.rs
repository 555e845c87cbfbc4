//! The message store: one `.eml`, `.json` and `.transcript` per accepted message, written
//! and synced before the `250` reply, under ids that never repeat within a directory; and
//! one `sessions/{id}.transcript` and `.json` per finished connection.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::Error;

/// The envelope of a stored message: the `{id}.json` file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEnvelope {
    /// The reverse-path of MAIL FROM, without angle brackets (empty for `<>`).
    pub from: String,
    /// The accepted RCPT TO forward-paths, without angle brackets, in order.
    pub recipients: Vec<String>,
    /// The MAIL FROM parameters as given, such as `BODY=8BITMIME` or `SIZE=1234`.
    pub mail_parameters: Vec<String>,
    /// The RCPT TO parameters of each recipient as given, such as `NOTIFY=SUCCESS,FAILURE`
    /// or `ORCPT=rfc822;bob@example.com`: one list per entry of `recipients`, in its order
    /// (empty lists for recipients given without any). Missing in files written before it
    /// existed, which read as no parameters.
    #[serde(default)]
    pub rcpt_parameters: Vec<Vec<String>>,
    /// The user that authenticated, if any.
    pub auth_user: Option<String>,
    /// Whether the message came over TLS (STARTTLS or implicit).
    pub tls: bool,
    /// The client's address and port.
    pub peer: String,
    /// The name the client gave in EHLO or HELO.
    pub helo: String,
    /// Whether the message came in BDAT chunks (RFC 3030 §2) rather than after DATA.
    #[serde(default)]
    pub bdat: bool,
    /// The size in octets of each BDAT chunk, in order (`[0]` for a lone `BDAT 0 LAST`);
    /// empty for a message sent with DATA.
    #[serde(default)]
    pub chunk_sizes: Vec<u64>,
    /// Whether MAIL declared `BODY=BINARYMIME` (RFC 3030 §3).
    #[serde(default)]
    pub binarymime: bool,
}

/// The record of one finished connection: the `sessions/{id}.json` file, written after its
/// `sessions/{id}.transcript`. Every connection gets one, including those that stored
/// nothing and those refused by the connection cap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSession {
    /// The session id, the stem of both files.
    pub id: String,
    /// The client's address and port.
    pub peer: String,
    /// When the connection was accepted, in milliseconds since the Unix epoch.
    pub started_unix_ms: u64,
    /// How long it lasted, in milliseconds.
    pub duration_ms: u64,
    /// Whether TLS was established.
    pub tls: bool,
    /// The ids of the messages stored during the session, in order.
    pub message_ids: Vec<String>,
    /// Why it ended, as [`SessionEnd::kind`](crate::SessionEnd::kind) names it, such as
    /// `quit` or `client-closed`.
    pub reason: String,
    /// Why it ended, as a sentence (the last note of the transcript).
    pub reason_text: String,
}

/// The subdirectory of the store that holds the session records.
pub(crate) const SESSIONS_DIR: &str = "sessions";

/// A message the server accepted with `250`, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// The id given in the `250` reply and used as the file stem, such as `000001`.
    pub id: String,
    /// The `.eml` file.
    pub path: PathBuf,
    /// Exactly the bytes received after dot-unstuffing (and, in permissive mode, line
    /// ending normalization), without the end-of-data `.` line.
    pub data: Vec<u8>,
    /// The envelope, as in the `.json` file.
    pub envelope: StoredEnvelope,
    /// The redacted text transcript of the session up to the end of data, as in the
    /// `.transcript` file.
    pub transcript: String,
    /// When it was stored.
    pub received: SystemTime,
}

/// The store directory and the next id in it.
#[derive(Debug)]
pub(crate) struct Store {
    dir: PathBuf,
    /// The directory was created by the server (`Config::store` was `None`).
    created: bool,
    /// `dir/sessions`.
    sessions: PathBuf,
    next_session: AtomicU64,
    /// The directory, open once for its syncs (opening it for each sync costs as much as
    /// the sync on a busy ext4).
    dir_handle: File,
    /// Sync files and the directory (`Config::sync`).
    sync: bool,
    next_id: Mutex<u64>,
    /// The first id of this run: those below it were left by an earlier run.
    first_id: u64,
    /// Oldest first: the newest messages an earlier run left (see [`EARLIER_LIMIT`]), then
    /// this run's.
    messages: Mutex<Vec<Arc<StoredMessage>>>,
}

/// At most how many messages, and how many octets of them, an earlier run's store brings
/// into memory (the newest first); older ones stay on disk, unlisted.
const EARLIER_LIMIT: (usize, usize) = (1000, 256 * 1024 * 1024);

impl Store {
    /// Opens (creating if needed) `dir`, or a fresh unique directory under the system
    /// temporary directory, and continues after the highest id already there.
    pub(crate) fn open(dir: Option<PathBuf>, sync: bool) -> Result<Self, Error> {
        let (dir, created) = match dir {
            Some(dir) => {
                fs::create_dir_all(&dir).map_err(|source| Error::Store {
                    path: dir.clone(),
                    source,
                })?;
                (dir, false)
            }
            None => (fresh_dir()?, true),
        };
        let opened = Self::open_in(dir.clone(), created, sync);
        if opened.is_err() && created {
            let _ = fs::remove_dir_all(&dir);
        }
        opened
    }

    fn open_in(dir: PathBuf, created: bool, sync: bool) -> Result<Self, Error> {
        let failed = |path: &Path| {
            let path = path.to_owned();
            move |source| Error::Store { path, source }
        };
        let highest = highest_id(&dir)
            .and_then(|highest| recover(&dir).map(|()| highest))
            .map_err(failed(&dir))?;
        let sessions = dir.join(SESSIONS_DIR);
        fs::create_dir_all(&sessions).map_err(failed(&sessions))?;
        let highest_session = highest_id(&sessions)
            .and_then(|highest| recover_sessions(&sessions).map(|()| highest))
            .map_err(failed(&sessions))?;
        let dir_handle = File::open(&dir).map_err(failed(&dir))?;
        let earlier = earlier_messages(&dir).map_err(failed(&dir))?;
        Ok(Self {
            dir,
            created,
            sessions,
            next_session: AtomicU64::new(highest_session + 1),
            dir_handle,
            sync,
            next_id: Mutex::new(highest + 1),
            first_id: highest + 1,
            messages: Mutex::new(earlier),
        })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the server created the directory itself (so it may remove it).
    pub(crate) fn created(&self) -> bool {
        self.created
    }

    /// A new session id, such as `000001`.
    pub(crate) fn next_session_id(&self) -> String {
        format!("{:06}", self.next_session.fetch_add(1, Ordering::Relaxed))
    }

    /// Saves a finished session: `sessions/{id}.transcript`, then `sessions/{id}.json`, each
    /// written under a temporary name and renamed, so a reader never sees half a file and a
    /// visible `.json` always has its transcript. With `sync` each file is synced before
    /// its rename; the directory is not (a crash may lose the newest records, never a
    /// message). Returns the transcript's path.
    pub(crate) fn save_session(
        &self,
        record: &StoredSession,
        transcript: &str,
        sync: bool,
    ) -> io::Result<PathBuf> {
        let id = &record.id;
        let mut json = serde_json::to_vec_pretty(record).map_err(io::Error::other)?;
        json.push(b'\n');
        let temp = |ext: &str| self.sessions.join(format!(".{id}.{ext}.tmp"));
        let last = |ext: &str| self.sessions.join(format!("{id}.{ext}"));
        let mut result = Ok(());
        for (ext, bytes) in [("transcript", transcript.as_bytes()), ("json", &json)] {
            result =
                write_file(&temp(ext), bytes, sync).and_then(|()| fs::rename(temp(ext), last(ext)));
            if result.is_err() {
                break;
            }
        }
        match result {
            Ok(()) => Ok(last("transcript")),
            Err(e) => {
                for ext in ["transcript", "json"] {
                    let _ = fs::remove_file(temp(ext));
                    let _ = fs::remove_file(last(ext));
                }
                Err(e)
            }
        }
    }

    /// This run's messages (not deleted), oldest first.
    pub(crate) fn messages(&self) -> Vec<StoredMessage> {
        let first = self.first_id;
        self.locked()
            .iter()
            .filter(|m| m.id.parse::<u64>().is_ok_and(|id| id >= first))
            .map(|m| StoredMessage::clone(m))
            .collect()
    }

    /// The messages stored (and not deleted), oldest first, without copying them: the
    /// newest an earlier run left in the directory, then this run's.
    pub(crate) fn list(&self) -> Vec<Arc<StoredMessage>> {
        self.locked().clone()
    }

    fn locked(&self) -> std::sync::MutexGuard<'_, Vec<Arc<StoredMessage>>> {
        self.messages.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The message with this id, if stored and not deleted.
    pub(crate) fn get(&self, id: &str) -> Option<Arc<StoredMessage>> {
        self.locked().iter().find(|m| m.id == id).cloned()
    }

    /// Deletes the messages with these ids (all with `None`): their three files, then the
    /// copy in memory. Returns the ids deleted; an id that is not stored is skipped.
    pub(crate) fn delete(&self, ids: Option<&[String]>) -> io::Result<Vec<String>> {
        let mut messages = self.locked();
        let mut deleted = Vec::new();
        let mut failed = None;
        messages.retain(|message| {
            let wanted = ids.is_none_or(|ids| ids.contains(&message.id));
            if !wanted || failed.is_some() {
                return true;
            }
            // The .eml first: without it the other two are orphans a restart removes.
            for ext in ["eml", "json", "transcript"] {
                let path = self.dir.join(format!("{}.{ext}", message.id));
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        failed = Some(io::Error::new(
                            e.kind(),
                            format!("cannot remove {}: {e}", path.display()),
                        ));
                        return ext == "eml";
                    }
                }
            }
            deleted.push(message.id.clone());
            false
        });
        match failed {
            Some(e) => Err(e),
            None => Ok(deleted),
        }
    }

    /// Writes the three files durably and returns the id. The `.eml` appears last, so a
    /// visible `.eml` always has its `.json` and `.transcript`; nothing is ever visible
    /// half-written under a final name.
    pub(crate) fn store(
        &self,
        data: Vec<u8>,
        envelope: StoredEnvelope,
        transcript: String,
    ) -> io::Result<String> {
        let id = {
            let mut next = self.next_id.lock().unwrap_or_else(PoisonError::into_inner);
            let id = *next;
            *next += 1;
            format!("{id:06}")
        };
        let mut json = serde_json::to_vec_pretty(&envelope).map_err(io::Error::other)?;
        json.push(b'\n');
        let files: [(&str, &[u8]); 3] = [
            ("json", &json),
            ("transcript", transcript.as_bytes()),
            ("eml", &data),
        ];
        let result = files
            .iter()
            .try_for_each(|(ext, bytes)| write_file(&self.temp(&id, ext), bytes, self.sync))
            .and_then(|()| self.publish(&id));
        if let Err(e) = result {
            for (ext, _) in files {
                let _ = fs::remove_file(self.temp(&id, ext));
                let _ = fs::remove_file(self.dir.join(format!("{id}.{ext}")));
            }
            return Err(e);
        }
        let message = StoredMessage {
            path: self.dir.join(format!("{id}.eml")),
            id: id.clone(),
            data,
            envelope,
            transcript,
            received: SystemTime::now(),
        };
        self.locked().push(Arc::new(message));
        Ok(id)
    }

    fn temp(&self, id: &str, ext: &str) -> PathBuf {
        self.dir.join(format!(".{id}.{ext}.tmp"))
    }

    /// Gives a synced message its final names: `.json` and `.transcript` first, a
    /// directory sync so those renames are durable, then the `.eml`, and a directory sync
    /// before the client is told `250`.
    fn publish(&self, id: &str) -> io::Result<()> {
        for ext in ["json", "transcript"] {
            fs::rename(self.temp(id, ext), self.dir.join(format!("{id}.{ext}")))?;
        }
        self.sync_dir()?;
        fs::rename(self.temp(id, "eml"), self.dir.join(format!("{id}.eml")))?;
        self.sync_dir()
    }

    fn sync_dir(&self) -> io::Result<()> {
        if self.sync {
            self.dir_handle.sync_all()
        } else {
            Ok(())
        }
    }
}

fn write_file(path: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    file.write_all(bytes)?;
    if sync { file.sync_all() } else { Ok(()) }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// After a crash: removes temporary files and any `.json`/`.transcript` whose `.eml` never
/// appeared. Those messages were never acknowledged (the 250 comes after the `.eml` rename
/// is synced), so nothing acknowledged is removed, and nothing half-written stays visible.
fn recover(dir: &Path) -> io::Result<()> {
    let mut removed = false;
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let orphan = match name.rsplit_once('.') {
            Some((stem, "json" | "transcript")) => {
                stem.bytes().all(|b| b.is_ascii_digit())
                    && !dir.join(format!("{stem}.eml")).exists()
            }
            Some((_, "tmp")) => name.starts_with('.'),
            _ => false,
        };
        if orphan {
            fs::remove_file(&path)?;
            removed = true;
        }
    }
    if removed {
        sync_dir(dir)?;
    }
    Ok(())
}

/// After a crash, in the sessions directory: removes temporary files and any `.transcript`
/// whose `.json` never appeared.
fn recover_sessions(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let orphan = match name.rsplit_once('.') {
            Some((stem, "transcript")) => {
                stem.bytes().all(|b| b.is_ascii_digit())
                    && !dir.join(format!("{stem}.json")).exists()
            }
            Some((_, "tmp")) => name.starts_with('.'),
            _ => false,
        };
        if orphan {
            fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// The newest messages an earlier run left in `dir` (within [`EARLIER_LIMIT`]), oldest
/// first, read from their three files; a message whose `.json` is unreadable is left out.
fn earlier_messages(dir: &Path) -> io::Result<Vec<Arc<StoredMessage>>> {
    let mut ids: Vec<(u64, String)> = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".eml")) else {
            continue;
        };
        if let Some(id) = Some(stem)
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
        {
            ids.push((id, stem.to_owned()));
        }
    }
    ids.sort_unstable_by_key(|(id, _)| std::cmp::Reverse(*id));
    let (most, most_octets) = EARLIER_LIMIT;
    let mut octets = 0usize;
    let mut found = Vec::new();
    for (_, id) in ids {
        if found.len() == most {
            break;
        }
        let path = dir.join(format!("{id}.eml"));
        let Ok(envelope) = fs::read(dir.join(format!("{id}.json")))
            .map_err(|_| ())
            .and_then(|json| serde_json::from_slice::<StoredEnvelope>(&json).map_err(|_| ()))
        else {
            continue;
        };
        let Ok(data) = fs::read(&path) else { continue };
        octets = octets.saturating_add(data.len());
        if octets > most_octets {
            break;
        }
        let transcript =
            fs::read_to_string(dir.join(format!("{id}.transcript"))).unwrap_or_default();
        let received = fs::metadata(&path)
            .and_then(|m| m.modified())
            .unwrap_or(UNIX_EPOCH);
        found.push(Arc::new(StoredMessage {
            id,
            path,
            data,
            envelope,
            transcript,
            received,
        }));
    }
    found.reverse();
    Ok(found)
}

/// The highest id used by any file (final or temporary) in `dir`, or 0.
fn highest_id(dir: &Path) -> io::Result<u64> {
    let mut highest = 0;
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        let name = name.strip_prefix('.').unwrap_or(name);
        let digits: &str = name.split_once('.').map_or(name, |(stem, _)| stem);
        let id = Some(digits)
            .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|d| d.parse::<u64>().ok());
        highest = highest.max(id.unwrap_or(0));
    }
    Ok(highest)
}

/// Creates a new, empty, uniquely named directory under the system temporary directory.
fn fresh_dir() -> Result<PathBuf, Error> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let base = std::env::temp_dir();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("test-server-{}-{n}-{nanos:09}", std::process::id()));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(source) => return Err(Error::Store { path: dir, source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope() -> StoredEnvelope {
        StoredEnvelope {
            from: "a@example.com".into(),
            recipients: vec!["b@example.com".into()],
            mail_parameters: vec![],
            rcpt_parameters: vec![vec!["NOTIFY=NEVER".into()]],
            auth_user: None,
            tls: false,
            peer: "127.0.0.1:1".into(),
            helo: "client".into(),
            bdat: true,
            chunk_sizes: vec![5],
            binarymime: false,
        }
    }

    /// A reopened store lists what an earlier run left (for the web inbox) but counts only
    /// this run's messages as its own; one without a readable `.json` is left out.
    #[test]
    fn an_earlier_runs_messages_are_listed() {
        let store = Store::open(None, true).expect("open");
        store
            .store(b"one\r\n".to_vec(), envelope(), "t1\n".into())
            .expect("store");
        fs::write(store.dir().join("000002.eml"), b"no envelope").expect("write");
        fs::write(store.dir().join("000002.json"), b"not json").expect("write");
        let again = Store::open(Some(store.dir().to_owned()), true).expect("reopen");
        let listed = again.list();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, "000001");
        assert_eq!(listed[0].data, b"one\r\n");
        assert_eq!(listed[0].envelope, envelope());
        assert_eq!(listed[0].transcript, "t1\n");
        assert!(again.messages().is_empty(), "not this run's");
        let id = again
            .store(b"two\r\n".to_vec(), envelope(), "t\n".into())
            .expect("store");
        assert_eq!(id, "000003");
        let ids: Vec<String> = again.list().iter().map(|m| m.id.clone()).collect();
        assert_eq!(ids, ["000001", "000003"]);
        assert_eq!(again.messages().len(), 1);
        assert_eq!(
            again.delete(Some(&["000001".to_owned()])).expect("delete"),
            ["000001"]
        );
        assert!(!again.dir().join("000001.eml").exists());
        assert!(again.get("000001").is_none());
        fs::remove_dir_all(again.dir()).expect("cleanup");
    }

    #[test]
    fn ids_continue_after_existing_files() {
        let store = Store::open(None, true).expect("open");
        let first = store
            .store(b"one\r\n".to_vec(), envelope(), "t\n".into())
            .expect("store");
        assert_eq!(first, "000001");
        fs::write(store.dir().join("000041.eml"), b"x").expect("write");
        let again = Store::open(Some(store.dir().to_owned()), true).expect("reopen");
        let next = again
            .store(b"two\r\n".to_vec(), envelope(), "t\n".into())
            .expect("store");
        assert_eq!(next, "000042");
        let eml = fs::read(again.dir().join("000042.eml")).expect("read");
        assert_eq!(eml, b"two\r\n");
        let json = fs::read_to_string(again.dir().join("000042.json")).expect("read");
        let parsed: StoredEnvelope = serde_json::from_str(&json).expect("json");
        assert_eq!(parsed, envelope());
        let leftovers: Vec<_> = fs::read_dir(again.dir())
            .expect("dir")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
        // A crash between the renames leaves a .json without its .eml, and temp files:
        // reopening removes both, and keeps ids unique.
        fs::write(again.dir().join("000043.json"), b"{}").expect("write");
        fs::write(again.dir().join(".000044.eml.tmp"), b"half").expect("write");
        let third = Store::open(Some(again.dir().to_owned()), true).expect("reopen");
        assert!(!third.dir().join("000043.json").exists());
        assert!(!third.dir().join(".000044.eml.tmp").exists());
        assert!(
            third.dir().join("000042.json").exists(),
            "acknowledged ones stay"
        );
        let next = third
            .store(b"three\r\n".to_vec(), envelope(), "t\n".into())
            .expect("store");
        assert_eq!(next, "000045");
        fs::remove_dir_all(again.dir()).expect("cleanup");
    }

    /// An envelope written before the BDAT and DSN members existed still reads.
    #[test]
    fn older_envelopes_still_read() {
        let old = r#"{"from":"a@example.com","recipients":["b@example.com"],
            "mail_parameters":["SIZE=5"],"auth_user":null,"tls":false,
            "peer":"127.0.0.1:1","helo":"client"}"#;
        let envelope: StoredEnvelope = serde_json::from_str(old).expect("old JSON");
        assert!(envelope.rcpt_parameters.is_empty() && envelope.chunk_sizes.is_empty());
        assert!(!envelope.bdat && !envelope.binarymime);
    }
}
