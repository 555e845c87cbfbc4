//! Rendering streams attachments: a 100 MB attachment must not raise the heap by
//! more than a few hundred kilobytes. A counting global allocator measures it.

// The global allocator below needs `unsafe impl GlobalAlloc`; nothing else here is unsafe.
#![allow(unsafe_code)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use common::TempDir;
use message::{Attachment, Date, Mailbox, MessageBuilder};

/// Counts the bytes currently allocated and the highest count seen.
struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let now = CURRENT.fetch_add(bytes, Ordering::SeqCst) + bytes;
    PEAK.fetch_max(now, Ordering::SeqCst);
}

fn shrank(bytes: usize) {
    CURRENT.fetch_sub(bytes, Ordering::SeqCst);
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged and
// only updates counters on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `alloc`'s contract.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `alloc_zeroed`'s contract.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is; `ptr` came from this allocator with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `realloc`'s contract.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            grew(new_size);
            shrank(layout.size());
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Counts what is written and throws it away, like `io::sink`.
struct CountingSink(u64);

impl Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

const SIZE: usize = 100 * 1024 * 1024;
const PEAK_LIMIT: usize = 8 * 1024 * 1024;

fn builder(attachment: &std::path::Path) -> MessageBuilder {
    MessageBuilder::new(Mailbox::parse("a@example.org").expect("valid"))
        .to(Mailbox::parse("b@example.org").expect("valid"))
        .date(Date::from_unix(1_700_000_000))
        .message_id("memory@example.org")
        .text("A big attachment follows.")
        .attach(Attachment::from_path(attachment).filename("big.bin"))
}

#[test]
fn a_100_mb_attachment_is_streamed_in_constant_memory() {
    let dir = TempDir::new("memory");
    let big = dir.path().join("big.bin");
    let started = Instant::now();
    {
        let mut file = std::fs::File::create(&big).expect("create");
        let chunk: Vec<u8> = (0..1024 * 1024)
            .map(|i: u32| (i * 7 + i / 251) as u8)
            .collect();
        for _ in 0..SIZE / chunk.len() {
            file.write_all(&chunk).expect("write");
        }
    }
    let written_in = started.elapsed();

    // The same message with an empty attachment: everything but the base64 lines.
    let empty = dir.write("empty.bin", b"");
    let frame = builder(&empty)
        .build()
        .expect("builds")
        .to_bytes()
        .expect("renders")
        .len() as u64;
    // 4 characters per 3 bytes, CRLF after every 57 bytes (76 characters).
    let base64 = (SIZE as u64).div_ceil(3) * 4 + (SIZE as u64).div_ceil(57) * 2;

    let message = builder(&big).build().expect("builds");
    let mut sink = CountingSink(0);
    let baseline = CURRENT.load(Ordering::SeqCst);
    PEAK.store(baseline, Ordering::SeqCst);
    let started = Instant::now();
    let returned = message.render(&mut sink).expect("renders");
    let rendered_in = started.elapsed();
    let peak = PEAK.load(Ordering::SeqCst) - baseline;

    println!(
        "wrote 100 MB in {written_in:?}; rendered {} bytes in {rendered_in:?}; peak heap during render {peak} bytes",
        sink.0
    );
    assert_eq!(returned, sink.0);
    assert_eq!(sink.0, frame + base64);
    assert_eq!(message.expected_len(), sink.0);
    assert!(peak < PEAK_LIMIT, "peak heap {peak} bytes during render");
}
