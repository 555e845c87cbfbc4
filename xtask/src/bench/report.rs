//! Markdown tables, the targets of issue 8, the round-trip plot (hand-written SVG) and
//! `docs/performance.md`, whose prose is the template `xtask/bench/performance.md.tmpl` (and
//! `performance-trace.md.tmpl` for the example trace): edit the prose there.

use std::fmt::Write as _;
use std::process::Command;
use std::time::Duration;

use anyhow::Result;

use super::criterion::Micro;
use super::roundtrips::{Measured, Row};
use super::throughput::{Case, Group, Throughput};
use super::{
    Ctx, FLOOR_CHUNKING_IMPLICIT, FLOOR_CHUNKING_STARTTLS, FLOOR_IMPLICIT, FLOOR_STARTTLS, median,
};
use super::{memory, store};
use crate::helpers;
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
        "| *protocol floor with DATA* | *{FLOOR_STARTTLS}* | *{FLOOR_IMPLICIT}* | | |"
    );
    let _ = writeln!(
        out,
        "| *protocol floor with BDAT (CHUNKING)* | *{FLOOR_CHUNKING_STARTTLS}* | *{FLOOR_CHUNKING_IMPLICIT}* | | |"
    );
    out
}

fn throughput_table(throughput: &Throughput, runs: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Message: {} octets as sent (raw-client's rendering; the peers send the same bytes, except \
         that smtp-source adds an empty line before the final `.`, 2 octets more). \
         Rates are messages / wall time of the client process, median of {runs} runs; \
         the ratio is against the best peer of the same group in this run, taken round by round \
         (each round runs every client once, in turn) and then the median of those ratios.\n",
        throughput.message_bytes
    );
    let all_steal: Vec<f64> = throughput
        .cases
        .iter()
        .flat_map(|c| c.steal.iter().copied())
        .collect();
    if !throughput.probe_us.is_empty() {
        let (min, max) = min_max(&throughput.probe_us);
        let _ = writeln!(
            out,
            "The machine's wake-up cost in this run: one byte sent to another thread over loopback \
             TCP and back, both asleep in `read` until it arrives, took {:.1} µs (median; \
             {min:.1}–{max:.1} µs over the rounds, each measured just before its round). \
             CPU time stolen by the hypervisor during the runs: median {:.1} %, highest {:.1} %.\n",
            median(&throughput.probe_us),
            median(&all_steal) * 100.0,
            all_steal.iter().copied().fold(0.0, f64::max) * 100.0
        );
    }
    out.push_str(
        "| connections | client | msg/s (median) | min–max | × best peer | client CPU | smtp-sink CPU (max) | smtp-sink sleeps per message |\n\
         |---|---|---:|---:|---:|---:|---:|---:|\n",
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
                let _ = writeln!(out, "| {connections} | {name} | failed: {why} | | | | | |");
                continue;
            }
            let rate = median(&case.rates);
            let (min, max) = min_max(&case.rates);
            let ratio = best
                .map(|best| ratio(paired_ratio(case, best)))
                .unwrap_or_else(|| "–".into());
            let or_dash = |values: &[f64], show: &dyn Fn(f64) -> String| {
                if values.is_empty() {
                    "–".to_owned()
                } else {
                    show(median(values))
                }
            };
            let _ = writeln!(
                out,
                "| {connections} | {name} | {rate:.0} | {min:.0}–{max:.0} | {ratio} | {} | {:.0} % | {} |",
                or_dash(&case.client_cpu, &|v| format!("{:.0} %", v * 100.0)),
                case.sink_cpu * 100.0,
                or_dash(&case.sink_sleeps, &|v| format!("{v:.2}")),
            );
        }
    }
    out
}

/// The smallest and the largest of some values.
fn min_max(values: &[f64]) -> (f64, f64) {
    (
        values.iter().copied().fold(f64::INFINITY, f64::min),
        values.iter().copied().fold(0.0, f64::max),
    )
}

fn store_table(cases: &[store::Case], runs: usize) -> String {
    let mut out = format!(
        "raw-client --repeat, {} messages per run over 1, 4 and 16 connections to test-server \
         (no TLS, no AUTH), median of {runs} runs. Time per message is the wall time each \
         connection spends per message (connections / rate); the last column is how much \
         longer that is than with `--no-sync` alone at the same connection count (the syncs' \
         cost, or the open inbox's).\n\n\
         | connections | store | msg/s (median) | min–max | ms per message | cost per message over `--no-sync` |\n\
         |---:|---|---:|---:|---:|---:|\n",
        store::MESSAGES
    );
    let unsynced = |connections: usize| {
        cases.iter().find(|c| {
            c.connections == connections && c.store == store::Store::NoSync && c.error.is_none()
        })
    };
    for case in cases {
        let mode = case.store.label();
        if let Some(why) = &case.error {
            let _ = writeln!(
                out,
                "| {} | {mode} | failed: {} | | | |",
                case.connections,
                why.replace('|', "\\|")
            );
            continue;
        }
        let (min, max) = min_max(&case.rates);
        let cost = match (case.store, unsynced(case.connections)) {
            (store::Store::NoSync, _) | (_, None) => String::new(),
            (_, Some(unsynced)) => format!(
                "{:.2} ms",
                case.ms_per_message() - unsynced.ms_per_message()
            ),
        };
        let _ = writeln!(
            out,
            "| {} | {mode} | {:.0} | {min:.0}–{max:.0} | {:.2} | {cost} |",
            case.connections,
            median(&case.rates),
            case.ms_per_message()
        );
    }
    if let Some(watched) = cases
        .iter()
        .find(|c| c.store == store::Store::Watched && c.error.is_none())
    {
        let versus = match unsynced(watched.connections) {
            Some(plain) => format!(
                "{:.2}× the plain `--no-sync` rate on one connection (paired by round)",
                store::paired(watched, plain)
            ),
            None => "the plain `--no-sync` case failed".to_owned(),
        };
        let _ = writeln!(
            out,
            "\nWith the inbox open (`--http` and one subscriber of `GET /api/v1/events`, which \
             also made {}), one connection kept {:.0} msg/s, {versus}; the subscriber saw {} \
             message events for the {} messages sent, loaded the inbox {} times, and saw each \
             run's last message at most {:.1} ms after raw-client exited.",
            store::reloads(),
            median(&watched.rates),
            watched.events,
            watched.rates.len() * store::MESSAGES,
            watched.inbox_loads,
            watched.behind_ms.iter().copied().fold(0.0, f64::max)
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
        if let Some(row) = find("raw-client-pipelining-chunking") {
            let (s, i) = (&row.starttls, &row.implicit);
            let met = matches!((s, i), (Ok(s), Ok(i)) if s.max <= FLOOR_CHUNKING_STARTTLS && i.max <= FLOOR_CHUNKING_IMPLICIT);
            verdicts.push(Verdict {
                target: format!(
                    "raw-client --pipelining --chunking at the floor with BDAT: {FLOOR_CHUNKING_STARTTLS} round trips with STARTTLS, {FLOOR_CHUNKING_IMPLICIT} with implicit TLS"
                ),
                figure: format!("{} / {}", cell(s), cell(i)),
                met,
            });
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
    if let Some(cases) = &results.store {
        let plain = cases
            .iter()
            .find(|c| c.connections == 1 && c.store == store::Store::NoSync && c.error.is_none());
        if let Some(watched) = cases.iter().find(|c| c.store == store::Store::Watched) {
            let target = format!(
                "test-server `--no-sync` with the inbox open (`--http`, one live subscriber that \
                 saw every message), one connection: ≥ {:.0} msg/s",
                store::WATCHED_TARGET
            );
            let (figure, met) = match &watched.error {
                Some(why) => (format!("failed: {}", why.replace('|', "\\|")), false),
                None => {
                    let rate = median(&watched.rates);
                    let versus = plain.map_or(String::new(), |plain| {
                        format!(
                            " (plain `--no-sync` {:.0} msg/s; paired ratio {:.2}×)",
                            median(&plain.rates),
                            store::paired(watched, plain)
                        )
                    });
                    (
                        format!("{rate:.0} msg/s{versus}"),
                        rate >= store::WATCHED_TARGET,
                    )
                }
            };
            verdicts.push(Verdict {
                target,
                figure,
                met,
            });
        }
    }
    if let Some(cases) = &results.memory {
        // The raw-client rows by their exact names (the DATA row's is a prefix of the
        // --chunking row's), the peers by the start of theirs.
        let find = |mib: u64, name: &str| {
            cases
                .iter()
                .find(|c| c.mib == mib && c.name == name && c.error.is_none())
        };
        let find_peer = |mib: u64, prefix: &str| {
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
        if let Some(chunking) = find(100, memory::CHUNKING_NAME) {
            verdicts.push(Verdict {
                target: "raw-client --chunking, 100 MiB attachment: peak RSS < 8 MiB".into(),
                figure: format!("{:.1} MiB", chunking.rss()),
                met: chunking.rss() < 8.0,
            });
        }
        if let (Some(binary), Some(base64)) = (
            find(100, memory::BINARYMIME_NAME),
            find(100, memory::CHUNKING_NAME),
        ) && let (Some(binary_octets), Some(base64_octets)) = (binary.octets, base64.octets)
        {
            let mib = |octets: u64| octets as f64 / (1024.0 * 1024.0);
            let share = binary_octets as f64 / base64_octets as f64;
            verdicts.push(Verdict {
                target:
                    "raw-client --binarymime, 100 MiB attachment: on the wire ≤ 80 % of base64's"
                        .into(),
                figure: format!(
                    "{:.1} MiB vs {:.1} MiB ({:.0} %), {:.2} s vs {:.2} s",
                    mib(binary_octets),
                    mib(base64_octets),
                    share * 100.0,
                    binary.seconds(),
                    base64.seconds()
                ),
                met: share <= 0.8,
            });
        }
        if let (Some(raw), Some(curl)) = (find(20, "raw-client"), find_peer(20, "curl")) {
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
        out.push_str(
            "### test-server under load: what syncing the store, and an open inbox, cost\n\n",
        );
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
    let width = 860.0;
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
<text x="{}" y="40" fill="#555" font-size="11">dashed: floor with DATA (8 / 6); dotted: with BDAT (7 / 5)</text>"##,
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
    for (floor, color, dashes) in [
        (FLOOR_STARTTLS, "#3b6fb6", "4 3"),
        (FLOOR_IMPLICIT, "#e08a2c", "4 3"),
        (FLOOR_CHUNKING_STARTTLS, "#3b6fb6", "1 3"),
        (FLOOR_CHUNKING_IMPLICIT, "#e08a2c", "1 3"),
    ] {
        let x = left + floor as f64 * scale;
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{:.1}" stroke="{color}" stroke-dasharray="{dashes}"/>"##,
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

/// `docs/performance.md`: this run's figures in the prose of `xtask/bench/performance.md.tmpl`
/// (and, with a trace, `xtask/bench/performance-trace.md.tmpl`).
pub(crate) fn document(results: &Results, tables: &str) -> Result<String> {
    let versions: Vec<String> = results
        .versions
        .iter()
        .map(|(name, version)| format!("| {name} | {} |", version.replace('|', "\\|")))
        .collect();
    let trace = match &results.example_trace {
        Some(trace) => helpers::render(TRACE_TEMPLATE, &[("TRACE", trace)])?,
        None => String::new(),
    };
    helpers::render(
        PAGE_TEMPLATE,
        &[
            ("VERSIONS", &versions.join("\n")),
            ("RUNS", &results.runs.to_string()),
            ("SECONDS", &format!("{:.0}", results.elapsed.as_secs_f64())),
            ("TABLES", tables),
            ("TRACE", &trace),
        ],
    )
}

/// The prose of `docs/performance.md`, under `xtask/`.
const PAGE_TEMPLATE: &str = "bench/performance.md.tmpl";
/// The section with the example trace.
const TRACE_TEMPLATE: &str = "bench/performance-trace.md.tmpl";

#[cfg(test)]
mod tests {
    use super::*;

    /// The figures a `docs/performance.md` was made from (the versions, runs, duration,
    /// tables and trace), read back from the page.
    fn figures(page: &str) -> (Results, String) {
        let between = |start: &str, end: &str| -> String {
            let from = page.find(start).map(|at| at + start.len()).unwrap_or(0);
            let to = page[from..].find(end).map_or(page.len(), |at| from + at);
            page[from..to].to_owned()
        };
        let rows = between("|---|---|\n", "| delay proxy |");
        let versions = rows
            .lines()
            .filter_map(|row| {
                let row = row.strip_prefix("| ")?.strip_suffix(" |")?;
                let (name, value) = row.split_once(" | ")?;
                Some((name.to_owned(), value.replace("\\|", "|")))
            })
            .collect();
        let runs = between("| runs | medians over ", " runs")
            .parse()
            .unwrap_or(0);
        let seconds = between("| bench duration | ", " s |").parse().unwrap_or(0);
        let tables = between("](round-trips.svg)\n\n", "\n### A trace");
        let trace = between("```text\n", "```\n\n\n## Notes");
        let results = Results {
            runs,
            versions,
            elapsed: Duration::from_secs(seconds),
            example_trace: Some(trace),
            ..Results::default()
        };
        (results, tables)
    }

    fn store_case(store: store::Store, rates: &[f64], error: Option<&str>) -> store::Case {
        store::Case {
            connections: 1,
            store,
            rates: rates.to_vec(),
            behind_ms: vec![0.5; rates.len()],
            events: rates.len() * store::MESSAGES,
            inbox_loads: rates.len() * 4,
            error: error.map(str::to_owned),
        }
    }

    #[test]
    fn the_open_inbox_is_held_to_its_rate_and_to_keeping_up() {
        let verdict = |watched: store::Case| {
            let results = Results {
                store: Some(vec![
                    store_case(store::Store::NoSync, &[1000.0, 1200.0, 1100.0], None),
                    watched,
                ]),
                ..Results::default()
            };
            let verdicts = verdicts(&results);
            assert_eq!(verdicts.len(), 1);
            let table = store_table(results.store.as_deref().unwrap_or_default(), 3);
            (verdicts[0].met, verdicts[0].figure.clone(), table)
        };
        let (met, figure, table) = verdict(store_case(
            store::Store::Watched,
            &[900.0, 600.0, 550.0],
            None,
        ));
        assert!(met);
        assert_eq!(
            figure,
            "600 msg/s (plain `--no-sync` 1100 msg/s; paired ratio 0.50×)"
        );
        assert!(table.contains("| 1 | `--no-sync --http`, one live subscriber | 600 | 550–900 |"));
        assert!(table.contains("the subscriber saw 1200 message events for the 1200 messages"));
        let (met, _, _) = verdict(store_case(store::Store::Watched, &[299.0], None));
        assert!(!met);
        let (met, figure, table) = verdict(store_case(
            store::Store::Watched,
            &[900.0],
            Some("the subscriber saw 399 message events for the 400 messages of this run"),
        ));
        assert!(!met);
        assert!(figure.starts_with("failed: the subscriber saw 399"));
        assert!(table.contains("| failed: the subscriber saw 399"));
        assert!(!table.contains("With the inbox open"));
    }

    #[test]
    fn the_committed_page_is_what_its_figures_render_to() -> anyhow::Result<()> {
        let path = crate::helpers::workspace_root().join("docs/performance.md");
        let page = std::fs::read_to_string(&path)?;
        let (results, tables) = figures(&page);
        assert_eq!(results.versions.len(), 10);
        assert_eq!(results.runs, 5);
        let rendered = document(&results, &tables)?;
        assert!(
            rendered == page,
            "docs/performance.md differs from its figures rendered through the template: \
             the first difference is at byte {}",
            rendered
                .bytes()
                .zip(page.bytes())
                .position(|(a, b)| a != b)
                .unwrap_or(rendered.len().min(page.len()))
        );
        // Without a trace its section is left out and nothing else changes.
        let untraced = Results {
            example_trace: None,
            ..results
        };
        let start = page.find("### A trace").unwrap_or(page.len());
        let end = page.find("\n## Notes").unwrap_or(page.len());
        let expected = format!("{}{}", &page[..start], &page[end..]);
        assert!(document(&untraced, &tables)? == expected);
        Ok(())
    }
}
