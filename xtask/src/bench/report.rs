//! Markdown tables, the targets of issue 8, the round-trip plot (hand-written SVG) and
//! `docs/performance.md`.

use std::fmt::Write as _;
use std::process::Command;
use std::time::Duration;

use super::criterion::Micro;
use super::roundtrips::{Measured, Row};
use super::throughput::{Case, Group, Throughput};
use super::{Ctx, FLOOR_IMPLICIT, FLOOR_STARTTLS, median};
use super::{memory, store};
use crate::interop::{install, procs};

/// Everything one run measured.
#[derive(Default)]
pub(crate) struct Results {
    pub(crate) runs: usize,
    pub(crate) round_trips: Option<Vec<Row>>,
    pub(crate) throughput: Option<Throughput>,
    pub(crate) memory: Option<Vec<memory::Case>>,
    pub(crate) store: Option<Vec<store::Case>>,
    pub(crate) criterion: Option<Vec<Micro>>,
    pub(crate) versions: Vec<(String, String)>,
    pub(crate) elapsed: Duration,
    /// The proxy trace of raw-client --pipelining with STARTTLS, for the document.
    pub(crate) example_trace: Option<String>,
}

/// A target of issue 8 and whether this run met it.
pub(crate) struct Verdict {
    pub(crate) target: String,
    pub(crate) figure: String,
    pub(crate) met: bool,
}

fn cell(measured: &Result<Measured, String>) -> String {
    match measured {
        Ok(m) if m.min == m.max => format!("{}", m.median),
        Ok(m) => format!("{} ({}–{})", m.median, m.min, m.max),
        Err(why) => format!("failed: {}", why.replace('|', "\\|")),
    }
}

fn wall(measured: &Result<Measured, String>) -> String {
    match measured {
        Ok(m) => format!("{:.2}", m.wall),
        Err(_) => "–".into(),
    }
}

/// The round-trip table.
pub(crate) fn round_trip_table(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str(
        "| client | STARTTLS round trips | implicit TLS round trips | STARTTLS time (s) | implicit TLS time (s) |\n\
         |---|---:|---:|---:|---:|\n",
    );
    for row in rows {
        let name = if row.client.ours {
            format!("**{}**", row.client.name)
        } else {
            row.client.name.to_owned()
        };
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} |",
            cell(&row.starttls),
            cell(&row.implicit),
            wall(&row.starttls),
            wall(&row.implicit)
        );
    }
    let _ = writeln!(
        out,
        "| *protocol floor* | *{FLOOR_STARTTLS}* | *{FLOOR_IMPLICIT}* | | |"
    );
    out
}

fn throughput_table(throughput: &Throughput, runs: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Message: {} octets as sent (raw-client's rendering; the peers send the same bytes). \
         Rates are messages / wall time of the client process, median of {runs} runs; \
         the ratio is against the best peer of the same group in this run, taken round by round \
         (each round runs every client once, in turn) and then the median of those ratios.\n",
        throughput.message_bytes
    );
    out.push_str(
        "| connections | client | msg/s (median) | min–max | × best peer | client CPU | smtp-sink CPU (max) |\n\
         |---|---|---:|---:|---:|---:|---:|\n",
    );
    for group in [Group::One, Group::Four] {
        let best = best_peer(throughput, group);
        for case in throughput.cases.iter().filter(|c| c.group == group) {
            let connections = match group {
                Group::One => "1",
                Group::Four => "4",
            };
            let name = if case.ours {
                format!("**{}**", case.name)
            } else {
                case.name.clone()
            };
            if let Some(why) = &case.error {
                let _ = writeln!(out, "| {connections} | {name} | failed: {why} | | | | |");
                continue;
            }
            let rate = median(&case.rates);
            let min = case.rates.iter().copied().fold(f64::INFINITY, f64::min);
            let max = case.rates.iter().copied().fold(0.0, f64::max);
            let ratio = best
                .map(|best| ratio(paired_ratio(case, best)))
                .unwrap_or_else(|| "–".into());
            let _ = writeln!(
                out,
                "| {connections} | {name} | {rate:.0} | {min:.0}–{max:.0} | {ratio} | {} | {:.0} % |",
                if case.client_cpu.is_empty() {
                    "–".to_owned()
                } else {
                    format!("{:.0} %", median(&case.client_cpu) * 100.0)
                },
                case.sink_cpu * 100.0
            );
        }
    }
    out
}

fn store_table(cases: &[store::Case], runs: usize) -> String {
    let mut out = format!(
        "raw-client --repeat, {} messages per run over 1, 4 and 16 connections to test-server \
         (no TLS, no AUTH), median of {runs} runs. Time per message is the wall time each \
         connection spends per message (connections / rate).\n\n\
         | connections | store | msg/s (median) | min–max | ms per message | syncs cost per message |\n\
         |---:|---|---:|---:|---:|---:|\n",
        store::MESSAGES
    );
    for case in cases {
        let mode = if case.sync {
            "synced (default)"
        } else {
            "`--no-sync`"
        };
        if let Some(why) = &case.error {
            let _ = writeln!(
                out,
                "| {} | {mode} | failed: {why} | | | |",
                case.connections
            );
            continue;
        }
        let min = case.rates.iter().copied().fold(f64::INFINITY, f64::min);
        let max = case.rates.iter().copied().fold(0.0, f64::max);
        let unsynced = cases
            .iter()
            .find(|c| c.connections == case.connections && !c.sync && c.error.is_none());
        let cost = match (case.sync, unsynced) {
            (true, Some(unsynced)) => format!(
                "{:.2} ms",
                case.ms_per_message() - unsynced.ms_per_message()
            ),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "| {} | {mode} | {:.0} | {min:.0}–{max:.0} | {:.2} | {cost} |",
            case.connections,
            median(&case.rates),
            case.ms_per_message()
        );
    }
    out
}

/// A ratio with enough digits to be read when it is small.
fn ratio(value: f64) -> String {
    if value >= 0.1 {
        format!("{value:.2}×")
    } else {
        format!("{value:.4}×")
    }
}

/// The best peer of a group (highest median rate).
fn best_peer(throughput: &Throughput, group: Group) -> Option<&Case> {
    throughput
        .cases
        .iter()
        .filter(|c| c.group == group && !c.ours && c.error.is_none() && !c.rates.is_empty())
        .max_by(|a, b| median(&a.rates).total_cmp(&median(&b.rates)))
}

/// `ours` against `peer`, paired by round (both ran in the same round, one after the
/// other), median over the rounds: a change in the machine's load during the run cancels out.
fn paired_ratio(ours: &Case, peer: &Case) -> f64 {
    let ratios: Vec<f64> = ours
        .rates
        .iter()
        .zip(&peer.rates)
        .map(|(o, p)| o / p)
        .collect();
    median(&ratios)
}

fn memory_table(cases: &[memory::Case]) -> String {
    let mut out = String::new();
    out.push_str(
        "| attachment | client | wall time (s) | peak RSS (MiB) | time × curl | runs |\n\
         |---|---|---:|---:|---:|---:|\n",
    );
    for mib in memory::SIZES {
        let curl = cases
            .iter()
            .find(|c| c.mib == mib && c.name.starts_with("curl") && c.error.is_none())
            .map(memory::Case::seconds);
        for case in cases.iter().filter(|c| c.mib == mib) {
            let name = if case.ours {
                format!("**{}**", case.name)
            } else {
                case.name.to_owned()
            };
            if let Some(why) = &case.error {
                let _ = writeln!(out, "| {mib} MiB | {name} | failed: {why} | | | |");
                continue;
            }
            let ratio = curl
                .map(|c| format!("{:.2}×", case.seconds() / c))
                .unwrap_or_else(|| "–".into());
            let _ = writeln!(
                out,
                "| {mib} MiB | {name} | {:.2} | {:.1} | {ratio} | {} |",
                case.seconds(),
                case.rss(),
                case.runs.len()
            );
        }
    }
    out
}

fn criterion_table(micros: &[Micro]) -> String {
    let mut out = String::new();
    out.push_str("| benchmark | median time | throughput |\n|---|---:|---:|\n");
    for micro in micros {
        let time = if micro.median_ns >= 1e6 {
            format!("{:.2} ms", micro.median_ns / 1e6)
        } else if micro.median_ns >= 1e3 {
            format!("{:.2} µs", micro.median_ns / 1e3)
        } else {
            format!("{:.0} ns", micro.median_ns)
        };
        let throughput = match micro.mb_per_s() {
            Some(mb) => format!("{mb:.0} MB/s"),
            None => format!("{:.1} M replies/s", 1e3 / micro.median_ns),
        };
        let _ = writeln!(out, "| `{}` | {time} | {throughput} |", micro.id);
    }
    out
}

/// The targets of issue 8, judged on this run's figures.
pub(crate) fn verdicts(results: &Results) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    if let Some(rows) = &results.round_trips {
        let find = |slug: &str| rows.iter().find(|r| r.client.slug == slug);
        if let Some(row) = find("raw-client-pipelining") {
            let (s, i) = (&row.starttls, &row.implicit);
            let met = matches!((s, i), (Ok(s), Ok(i)) if s.max <= FLOOR_STARTTLS && i.max <= FLOOR_IMPLICIT);
            verdicts.push(Verdict {
                target: format!(
                    "raw-client --pipelining at the floor: {FLOOR_STARTTLS} round trips with STARTTLS, {FLOOR_IMPLICIT} with implicit TLS"
                ),
                figure: format!("{} / {}", cell(s), cell(i)),
                met,
            });
            if let Some(msmtp) = find("msmtp") {
                let fewer =
                    |ours: &Result<Measured, String>, peer: &Result<Measured, String>| match (
                        ours, peer,
                    ) {
                        (Ok(o), Ok(p)) => Some(p.median as i64 - o.max as i64),
                        _ => None,
                    };
                let a = fewer(s, &msmtp.starttls);
                let b = fewer(i, &msmtp.implicit);
                verdicts.push(Verdict {
                    target: "at least 2 round trips fewer than msmtp".into(),
                    figure: format!(
                        "msmtp {} / {}: {} / {} fewer",
                        cell(&msmtp.starttls),
                        cell(&msmtp.implicit),
                        a.map_or("?".into(), |n| n.to_string()),
                        b.map_or("?".into(), |n| n.to_string())
                    ),
                    met: a.is_some_and(|n| n >= 2) && b.is_some_and(|n| n >= 2),
                });
            }
        }
    }
    if let Some(throughput) = &results.throughput {
        for (group, name, peer_name) in [
            (
                Group::One,
                "raw-client --repeat 5000",
                "smtp-source -s 1 -d",
            ),
            (
                Group::One,
                "raw-client --repeat 5000 --pipelining",
                "smtp-source -s 1 -d",
            ),
            (
                Group::Four,
                "raw-client --repeat 5000 --connections 4 --pipelining",
                "smtp-source -s 4 -d",
            ),
            (
                Group::Four,
                "raw-client --repeat 5000 --connections 4",
                "smtp-source -s 4 -d",
            ),
        ] {
            let find = |n: &str| {
                throughput
                    .cases
                    .iter()
                    .find(|c| c.name == n && c.group == group && c.error.is_none())
            };
            if let (Some(ours), Some(peer)) = (find(name), find(peer_name)) {
                let paired = paired_ratio(ours, peer);
                verdicts.push(Verdict {
                    target: format!("`{name}` ≥ 1.0× `{peer_name}`"),
                    figure: format!(
                        "{:.0} vs {:.0} msg/s (medians); paired ratio {paired:.2}×",
                        median(&ours.rates),
                        median(&peer.rates)
                    ),
                    met: paired >= 1.0,
                });
            }
        }
    }
    if let Some(cases) = &results.memory {
        let find = |mib: u64, prefix: &str| {
            cases
                .iter()
                .find(|c| c.mib == mib && c.name.starts_with(prefix) && c.error.is_none())
        };
        if let Some(raw) = find(100, "raw-client") {
            verdicts.push(Verdict {
                target: "raw-client, 100 MiB attachment: peak RSS < 32 MiB".into(),
                figure: format!("{:.1} MiB", raw.rss()),
                met: raw.rss() < 32.0,
            });
        }
        if let (Some(raw), Some(curl)) = (find(20, "raw-client"), find(20, "curl")) {
            let ratio = raw.seconds() / curl.seconds();
            verdicts.push(Verdict {
                target: "raw-client, 20 MiB attachment: time ≤ 1.5× curl's prebuilt-file time"
                    .into(),
                figure: format!(
                    "{:.2} s vs {:.2} s = {ratio:.2}×",
                    raw.seconds(),
                    curl.seconds()
                ),
                met: ratio <= 1.5,
            });
        }
    }
    verdicts
}

fn verdict_table(verdicts: &[Verdict]) -> String {
    let mut out = String::from("| target (issue 8) | this run | met |\n|---|---|---|\n");
    for v in verdicts {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            v.target,
            v.figure,
            if v.met { "yes" } else { "**no**" }
        );
    }
    out
}

/// All tables, as printed and as put into the document.
pub(crate) fn markdown(results: &Results) -> String {
    let mut out = String::new();
    if let Some(rows) = &results.round_trips {
        out.push_str("### Round trips (delay proxy, 25 ms each way)\n\n");
        out.push_str(&round_trip_table(rows));
        out.push('\n');
    }
    if let Some(throughput) = &results.throughput {
        out.push_str("### Throughput to smtp-sink (~1 KB messages, no TLS)\n\n");
        out.push_str(&throughput_table(throughput, results.runs));
        out.push('\n');
    }
    if let Some(cases) = &results.store {
        out.push_str("### test-server under load: what syncing the store costs\n\n");
        out.push_str(&store_table(cases, results.runs));
        out.push('\n');
    }
    if let Some(cases) = &results.memory {
        out.push_str("### Large attachments to smtp-sink (no TLS): wall time and peak RSS\n\n");
        out.push_str(&memory_table(cases));
        out.push('\n');
    }
    if let Some(micros) = &results.criterion {
        out.push_str("### Criterion micro-benchmarks\n\n");
        out.push_str(&criterion_table(micros));
        out.push('\n');
    }
    let verdicts = verdicts(results);
    if !verdicts.is_empty() {
        out.push_str("### Targets\n\n");
        out.push_str(&verdict_table(&verdicts));
    }
    out
}

/// The round trips per client, as a horizontal bar chart.
pub(crate) fn svg(rows: &[Row]) -> String {
    let left = 250.0;
    let right = 40.0;
    let width = 820.0;
    let bar = 12.0;
    let row_height = 36.0;
    let top = 56.0;
    let max = rows
        .iter()
        .flat_map(|r| [&r.starttls, &r.implicit])
        .filter_map(|m| m.as_ref().ok().map(|m| m.max))
        .max()
        .unwrap_or(FLOOR_STARTTLS)
        .max(FLOOR_STARTTLS)
        + 1;
    let scale = (width - left - right) / max as f64;
    let height = top + row_height * rows.len() as f64 + 40.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13">"##
    );
    let _ = writeln!(
        out,
        r##"<rect width="100%" height="100%" fill="white"/>
<text x="20" y="20" font-size="15" font-weight="bold">Round trips for one STARTTLS/implicit-TLS + AUTH + 1-recipient message</text>
<rect x="{left}" y="30" width="12" height="10" fill="#3b6fb6"/><text x="{}" y="40">STARTTLS</text>
<rect x="{}" y="30" width="12" height="10" fill="#e08a2c"/><text x="{}" y="40">implicit TLS</text>
<text x="{}" y="40" fill="#555">dashed: protocol floor (8 / 6)</text>"##,
        left + 16.0,
        left + 100.0,
        left + 116.0,
        left + 230.0
    );
    for tick in 0..=max {
        let x = left + tick as f64 * scale;
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{:.1}" stroke="#eee"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#555" font-size="11">{tick}</text>"##,
            height - 30.0,
            height - 16.0
        );
    }
    for (floor, color) in [(FLOOR_STARTTLS, "#3b6fb6"), (FLOOR_IMPLICIT, "#e08a2c")] {
        let x = left + floor as f64 * scale;
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{:.1}" stroke="{color}" stroke-dasharray="4 3"/>"##,
            height - 30.0
        );
    }
    for (index, row) in rows.iter().enumerate() {
        let y = top + row_height * index as f64 + 6.0;
        let weight = if row.client.ours { "bold" } else { "normal" };
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" font-weight="{weight}">{}</text>"##,
            left - 8.0,
            y + bar + 4.0,
            escape(row.client.name)
        );
        for (offset, measured, color) in [
            (0.0, &row.starttls, "#3b6fb6"),
            (bar + 1.0, &row.implicit, "#e08a2c"),
        ] {
            let y = y + offset;
            match measured {
                Ok(m) => {
                    let w = m.median as f64 * scale;
                    let _ = writeln!(
                        out,
                        r##"<rect x="{left}" y="{y:.1}" width="{w:.1}" height="{bar}" fill="{color}"/><text x="{:.1}" y="{:.1}" font-size="11">{}</text>"##,
                        left + w + 4.0,
                        y + bar - 2.0,
                        m.median
                    );
                }
                Err(_) => {
                    let _ = writeln!(
                        out,
                        r##"<text x="{:.1}" y="{:.1}" font-size="11" fill="#b00">failed</text>"##,
                        left + 4.0,
                        y + bar - 2.0
                    );
                }
            }
        }
    }
    out.push_str("</svg>\n");
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Versions and machine facts for the document.
pub(crate) fn versions(ctx: &Ctx, tools: &install::Tools) -> Vec<(String, String)> {
    let first_line = |program: &str, args: &[&str]| {
        procs::output(Command::new(program).args(args))
            .map(|s| s.lines().next().unwrap_or_default().trim().to_owned())
            .unwrap_or_else(|_| "unavailable".into())
    };
    let lettre = std::fs::read_to_string(ctx.root.join("Cargo.lock"))
        .ok()
        .and_then(|lock| {
            let at = lock.find("name = \"lettre\"")?;
            let rest = &lock[at..];
            let line = rest.lines().nth(1)?;
            Some(
                line.trim_start_matches("version = ")
                    .trim_matches('"')
                    .to_owned(),
            )
        })
        .unwrap_or_else(|| "unknown".into());
    let mut versions = vec![
        (
            "date (UTC)".to_owned(),
            first_line("date", &["-u", "+%Y-%m-%d"]),
        ),
        (
            "machine".to_owned(),
            format!(
                "{} cores, Linux {}, loopback only",
                first_line("nproc", &[]),
                first_line("uname", &["-r"])
            ),
        ),
        ("rustc".to_owned(), first_line("rustc", &["--version"])),
        ("lettre".to_owned(), lettre),
        (
            "Python".to_owned(),
            first_line(&ctx.python.display().to_string(), &["--version"]),
        ),
    ];
    for (name, version) in install::versions(tools) {
        if ["Postfix", "swaks", "curl", "msmtp", "OpenSSL"].contains(&name.as_str()) {
            // "curl 7.88.1 (x86_64-pc-linux-gnu) libcurl/…": the part before the details.
            let short = version.split(" (").next().unwrap_or(&version).to_owned();
            versions.push((name, short));
        }
    }
    versions
}

/// `docs/performance.md`.
pub(crate) fn document(results: &Results, tables: &str) -> String {
    let mut doc = String::new();
    doc.push_str(
        "# Performance: round trips, throughput, memory\n\n\
         *Generated by `cargo xtask bench` (xtask/src/bench.rs); do not edit by hand — rerun it.*\n\n\
         SMTP is latency-bound: on a link with a 50 ms round trip, every command that waits for \
         its reply costs 50 ms. This page measures how many round trips each client needs for \
         one message, how many messages per second it pushes through one and four connections, \
         and what a large attachment costs it in time and memory — raw-client and lib-client \
         against the peers, all in the same run, on the same machine.\n\n",
    );
    doc.push_str("## Machine and versions\n\n| | |\n|---|---|\n");
    for (name, version) in &results.versions {
        let _ = writeln!(doc, "| {name} | {} |", version.replace('|', "\\|"));
    }
    let _ = writeln!(
        doc,
        "| delay proxy | D = 25 ms each way (one round trip = 50 ms) |\n\
         | runs | medians over {} runs (100 MiB attachments: 3 runs); round trips: 3 runs |\n\
         | bench duration | {:.0} s |\n",
        results.runs,
        results.elapsed.as_secs_f64()
    );
    doc.push_str(
        "The machine is a shared 2-core VM: other jobs may run at the same time, which is why \
         every figure is a median and every comparison is made against peers measured in the \
         same run, in alternating order.\n\n",
    );
    doc.push_str(METHOD);
    doc.push_str("## Results\n\n![Round trips per client](round-trips.svg)\n\n");
    doc.push_str(tables);
    doc.push('\n');
    if let Some(trace) = &results.example_trace {
        doc.push_str(
            "### A trace: raw-client --pipelining, STARTTLS\n\n\
             The delay proxy's record of one session (times in ms since the client connected; \
             TLS records after the handshake, so only sizes are visible). Each server flight is \
             one round trip; the client's message and its `.`/QUIT trailer follow the 354 without \
             waiting.\n\n```text\n",
        );
        doc.push_str(trace);
        doc.push_str("```\n\n");
    }
    doc.push_str(NOTES);
    doc
}

const METHOD: &str = "\
## How it is measured

**Round trips.** The kernel here has no netem, so `cargo xtask bench` runs a delay proxy of its \
own (xtask/src/bench/proxy.rs): for each client connection it waits D (the SYN/SYN-ACK), \
connects to test-server, and forwards every chunk it reads, in either direction, D after it \
read it — each direction has a timestamped queue, so a burst costs one D, not one per chunk. \
It records every chunk (direction, time, length). Round trips are counted from that trace, \
not from wall time:

> **RT = 1 (the TCP handshake) + the number of server→client flights**, where a flight is a \
> maximal run of server→client chunks not interrupted by a client→server chunk.

Each server flight is something the client had to wait for: the greeting, the reply to a \
command or to a pipelined group, a TLS handshake flight. Replies written one by one to a \
pipelined group, or TLS session tickets followed by the EHLO reply, arrive in the same half \
trip and are one flight; a client writing its body and the final `.` separately adds nothing \
(only answers cost a trip); a QUIT the client does not wait for costs nothing. The unit \
tests in proxy.rs check the rule on synthetic traces, and each real trace is kept in \
`target/bench/traces/` after a run.

Every client sends one message with one recipient to test-server, authenticating with \
AUTH (PLAIN where the client lets us choose), over STARTTLS on the plaintext port or \
implicit TLS (RFC 8314) on the TLS port, TLS 1.3, certificate verified against test-server's \
CA.

**The floor** is 8 round trips with STARTTLS and 6 with implicit TLS:

| # | STARTTLS | implicit TLS |
|---|---|---|
| 1 | TCP handshake | TCP handshake |
| 2 | greeting `220` | TLS ClientHello → ServerHello … Finished |
| 3 | `EHLO` → `250` | client Finished → session tickets + greeting `220` |
| 4 | `STARTTLS` → `220` | `EHLO` → `250` |
| 5 | TLS ClientHello → ServerHello … Finished | `AUTH PLAIN <ir>` `MAIL` `RCPT` `DATA` → `235` `250` `250` `354` |
| 6 | client Finished + `EHLO` → tickets + `250` | message + `.` + `QUIT` → `250` `221` |
| 7 | `AUTH PLAIN <ir>` `MAIL` `RCPT` `DATA` → `235` `250` `250` `354` | |
| 8 | message + `.` + `QUIT` → `250` `221` | |

Why these groups are allowed: RFC 2920 §3.1 lets a client send commands without waiting \
for their replies when the server offers PIPELINING, except that EHLO, DATA, VRFY, EXPN, \
TURN, QUIT and NOOP may only be the last command in a group (so DATA ends the first \
group, and the message body can only follow its `354`). RFC 4954 §4 adds AUTH to that \
list, with one exception: an AUTH that carries an initial response for a mechanism that \
completes in one round trip and negotiates no security layer — PLAIN is one — may be \
followed by other commands in the same group, so AUTH PLAIN with its initial response can \
lead the MAIL/RCPT/DATA group. The message, its final `.` and QUIT go in one write (RFC 2920 §3.1: QUIT ends a \
group, and it may follow the end of data). The EHLO after STARTTLS cannot be sent before \
the handshake ends (RFC 3207 §4.2), but it can share the write that carries the client's \
TLS Finished. The server must still answer STARTTLS and each EHLO before the client can \
go on, which is what keeps the floor at 8.

**Throughput.** Postfix's `smtp-sink` on 127.0.0.1 throws the messages away; no TLS, no \
AUTH. Every client sends the same ~1 KB message (raw-client's rendering, captured through \
test-server and given to the peers as a file; `smtp-source -F` gets it with LF line ends \
because it appends CRLF itself). A rate is messages divided by the wall time of the whole \
client process (connect to QUIT, process start included), median over the runs; the clients \
take turns within each round. The client CPU column is the client's user + system time \
(all its processes and threads) over its wall time, median of the runs, from the `cutime` \
and `cstime` of the bench's own /proc/self/stat: 100 % is one core busy the whole time. The \
smtp-sink CPU column is the sink's CPU time over the client's wall time (its highest run): \
below 100 % of its one core, the sink was not the bottleneck.

**test-server's store.** raw-client `--repeat` sends the same ~1 KB message over 1, 4 and \
16 connections to two test-servers storing under `target/bench/store` on this machine's \
disk: one as it runs by default (every file and the directory synced before `250`), one \
with `--no-sync`; they take turns within each round. The difference in time per message is \
what the syncs cost here. The throughput table above uses smtp-sink instead, so the disk \
never limits the clients' figures.

**Large attachments.** GNU time (`/usr/bin/time -f '%e %M'`) gives the wall time and peak \
RSS of one client process sending one message with a 20 MiB or 100 MiB attachment \
(pseudo-random bytes, so base64 cannot be skipped) to smtp-sink. raw-client, lib-client, \
swaks and smtplib build the MIME message from the file; curl (`--upload-file`) and msmtp \
(standard input) get a prebuilt `.eml` — raw-client's own rendering of the same message — \
so they only copy bytes. swaks runs at 20 MiB only (it holds the message many times over).

";

const NOTES: &str = "
## Notes

- **How raw-client keeps up with smtp-source.** `--repeat`/`--connections` runs each \
  connection's dialogue up to its first message on a thread of its own (recorded, so the \
  transcript is the one a single send prints), then hands every connection to one event loop \
  (crates/raw-client/src/event_loop.rs): non-blocking sockets, `poll(2)`, one small state \
  machine per connection for MAIL, RCPT, DATA and the message, which is rendered and \
  dot-stuffed once and shared. Before it sleeps in `poll(2)`, the loop polls without \
  sleeping for up to 50 µs: on loopback the reply comes back sooner than a sleeping thread \
  is woken (on this virtual machine a sleep and wake-up costs more than the SMTP work), so \
  the spin turns most waits into no sleep at all. That is where the gain on one connection \
  comes from, and the client CPU column shows its price: raw-client keeps one core busy \
  for the run, smtp-source less. Against a remote server the spin costs at most 50 µs of CPU \
  per reply that takes milliseconds. Messages above 8 MiB are instead streamed from disk \
  for each send, one thread per connection, so memory stays flat.
- **Four connections without pipelining** are bounded by smtp-sink: with either client it \
  uses about 90 % of its one core (last column), so raw-client's margin over smtp-source \
  there is small and the ratio moves with the machine's load; with `--pipelining` the sink \
  gets each message's commands in fewer reads, which is how raw-client goes three times \
  further.
- **lettre's Nagle stall, and its pool.** lib-client (lettre 0.11, blocking transport) never \
  sets TCP_NODELAY and writes the message body and the final `.` in separate writes, so \
  each message waits for the server's delayed ACK (~40 ms on Linux). lib-client keeps \
  lettre's behaviour on purpose (it is the reference for what a library does) and opens one \
  connection per run, without lettre's pool. The row *lettre 0.11 with its pool* is \
  bench/src/bin/lettre-pool.rs: the same message through one `SmtpTransport` with \
  `PoolConfig::max_size(1)`, so one connection is reused. The pool saves the connection \
  set-up of each message (greeting, EHLO and, with TLS, STARTTLS and AUTH) but not the \
  stall, which is per message: compare its rate with lib-client's one connection per \
  message.
- **lettre's memory.** lettre's message builder holds the whole encoded message in memory \
  (several copies while it encodes), so its peak RSS grows with the attachment; raw-client \
  streams the file through a base64 encoder straight into the socket and stays flat.
- **Wall time in the round-trip table** includes the client's process start (Perl for \
  swaks, Python for smtplib) and is shown only to make the cost of round trips visible: \
  round trips × 50 ms dominates it.
- **test-server under load.** Measuring the store found that each message's `.transcript` \
  repeated the whole session so far, so N messages on one connection wrote O(N²) bytes; it \
  now holds the session's set-up and the message's own transaction \
  (docs/test-server.md). A group commit of the directory syncs across sessions was also \
  built and measured, and taken out again: it was never faster than ext4's own batching of \
  concurrent syncs (figures in docs/test-server.md).
- **Micro-benchmarks** come from the `bench/` crate (criterion, not a workspace member, so \
  `cargo test --workspace` does not build criterion): `cargo bench --manifest-path \
  bench/Cargo.toml`.
- `cargo xtask bench --quick` (in `.ci/run`) measures only raw-client (default and \
  `--pipelining`) and lib-client round trips, and fails when raw-client `--pipelining` needs \
  more than 8 / 6.
";
