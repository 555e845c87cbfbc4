//! Criterion micro-benchmarks, run by `cargo xtask bench` (figures in docs/performance.md):
//!
//! - `message/*`: the `message` crate building and rendering a ~1 KB text message, and
//!   rendering one with a 4 MiB attachment (base64 streamed from the file) into `io::sink()`
//!   (bytes per second of rendered output).
//! - `raw-client/*`: the same with raw-client's `DotStuffer` (dot-stuffing and line-ending
//!   normalization, what raw-client puts between the renderer and the socket), and the
//!   `DotStuffer` alone on the rendered bytes.
//! - `reply/*`: raw-client's reply parser on a one-line reply and on a 9-line EHLO reply.

use std::hint::black_box;
use std::io::{self, Write as _};
use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use message::{Attachment, Date, Mailbox, MessageBuilder};
use raw_client::data::DotStuffer;

fn builder() -> MessageBuilder {
    let body: String = (0..12)
        .map(|i| format!("Line {i:02} of the benchmark message, about seventy octets long.\n"))
        .collect();
    MessageBuilder::new(Mailbox::parse("Sender <sender@example.org>").expect("from"))
        .to(Mailbox::parse("rcpt@example.net").expect("to"))
        .subject("Benchmark")
        .date(Date::from_unix(1_700_000_000))
        .message_id("bench@example.org")
        .text(body)
}

/// A 4 MiB file of pseudo-random bytes under the target directory.
fn attachment_file() -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let path = dir.join("bench-attachment-4MiB.bin");
    let size = 4 * 1024 * 1024;
    if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(size) {
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut bytes = Vec::with_capacity(size as usize);
        while bytes.len() < size as usize {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            bytes.extend_from_slice(&state.to_le_bytes());
        }
        std::fs::write(&path, bytes).expect("writing the attachment");
    }
    path
}

fn render(c: &mut Criterion) {
    let small_len = builder()
        .build()
        .expect("small")
        .to_bytes()
        .expect("render")
        .len() as u64;
    let mut group = c.benchmark_group("message");
    group.throughput(Throughput::Bytes(small_len));
    // The builder renders headers and text parts at build() time, so a text message is
    // measured from the builder on.
    group.bench_function("build+render text 1 KB", |b| {
        b.iter(|| {
            let message = black_box(builder()).build().expect("build");
            message.render(io::sink()).expect("render")
        })
    });
    let large = builder()
        .attach(Attachment::from_path(attachment_file()).content_type("application/octet-stream"))
        .build()
        .expect("message with attachment");
    let large_bytes = large.to_bytes().expect("render");
    group.throughput(Throughput::Bytes(large_bytes.len() as u64));
    group.bench_function("render attachment 4 MiB", |b| {
        b.iter(|| black_box(&large).render(io::sink()).expect("render"))
    });
    group.finish();

    // What raw-client puts between the renderer and the socket.
    let mut group = c.benchmark_group("raw-client");
    group.throughput(Throughput::Bytes(large_bytes.len() as u64));
    group.bench_function("render+dotstuff attachment 4 MiB", |b| {
        b.iter(|| {
            let mut stuffer = DotStuffer::new(io::sink());
            black_box(&large).render(&mut stuffer).expect("render");
            stuffer.finish().expect("finish")
        })
    });
    group.bench_function("dotstuff 4 MiB rendered, 64 KiB writes", |b| {
        b.iter(|| {
            let mut stuffer = DotStuffer::new(io::sink());
            for chunk in black_box(&large_bytes).chunks(64 * 1024) {
                stuffer.write_all(chunk).expect("write");
            }
            stuffer.finish().expect("finish")
        })
    });
    group.finish();
}

fn reply(c: &mut Criterion) {
    let one = b"250 2.0.0 Ok: queued as 000123\r\n".to_vec();
    let mut ehlo = Vec::new();
    for line in [
        "250-test-server.example.org greets client.example.org",
        "250-PIPELINING",
        "250-SIZE 36700160",
        "250-8BITMIME",
        "250-SMTPUTF8",
        "250-ENHANCEDSTATUSCODES",
        "250-AUTH PLAIN LOGIN",
        "250-STARTTLS",
        "250 CHUNKING",
    ] {
        write!(ehlo, "{line}\r\n").expect("vec");
    }
    let mut group = c.benchmark_group("reply");
    group.throughput(Throughput::Elements(1));
    group.bench_function("one line", |b| {
        b.iter(|| raw_client::reply::parse(black_box(&one)).expect("parse"))
    });
    group.bench_function("EHLO 9 lines", |b| {
        b.iter(|| raw_client::reply::parse(black_box(&ehlo)).expect("parse"))
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = render, reply
}
criterion_main!(benches);
