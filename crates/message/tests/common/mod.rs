//! Helpers shared by the integration tests: a self-cleaning temporary directory
//! and checks every rendered message must pass.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A fresh directory under `std::env::temp_dir()`, removed when dropped.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(label: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "message-{label}-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `bytes` to `name` inside the directory and returns the path.
    pub(crate) fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).expect("write temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The wire invariants: CRLF-only line endings, lines of at most 998 octets, a
/// final CRLF.
pub(crate) fn assert_wire_format(bytes: &[u8]) {
    assert!(
        bytes.ends_with(b"\r\n"),
        "the message does not end with CRLF"
    );
    let mut line_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\r' => assert_eq!(bytes.get(i + 1), Some(&b'\n'), "bare CR at {i}"),
            b'\n' => {
                assert!(i > 0 && bytes[i - 1] == b'\r', "bare LF at {i}");
                let len = i - 1 - line_start;
                assert!(len <= 998, "line of {len} octets at {line_start}");
                line_start = i + 1;
            }
            _ => {}
        }
    }
}

/// Lines with CRLF shown as `␍␊` so that snapshots make line endings visible.
pub(crate) fn visible(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec())
        .expect("UTF-8 message")
        .replace("\r\n", "␍␊\n")
}
