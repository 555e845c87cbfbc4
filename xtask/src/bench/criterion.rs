//! The criterion micro-benchmarks of the `bench/` crate (not a workspace member, so that
//! `cargo test --workspace` never compiles criterion): run with `cargo bench`, then read back
//! from criterion's JSON files.

use std::path::Path;

use anyhow::{Context as _, Result, bail};

use super::Ctx;
use crate::helpers;

/// One benchmark's result.
#[derive(Debug, Clone)]
pub(crate) struct Micro {
    /// `group/function`.
    pub(crate) id: String,
    /// Median time per iteration, nanoseconds.
    pub(crate) median_ns: f64,
    /// Bytes per iteration, when the benchmark declared a byte throughput.
    pub(crate) bytes: Option<u64>,
}

impl Micro {
    /// Megabytes (10^6 bytes) per second.
    pub(crate) fn mb_per_s(&self) -> Option<f64> {
        self.bytes
            .map(|bytes| bytes as f64 / (self.median_ns / 1e9) / 1e6)
    }
}

/// Runs `cargo bench --manifest-path bench/Cargo.toml` and collects the medians.
pub(crate) fn run(ctx: &Ctx) -> Result<Vec<Micro>> {
    let home = ctx.work.join("criterion");
    if home.exists() {
        std::fs::remove_dir_all(&home)?;
    }
    helpers::status(
        helpers::cargo()
            .args([
                "bench",
                "--manifest-path",
                "bench/Cargo.toml",
                "--bench",
                "micro",
            ])
            .env("CARGO_TARGET_DIR", ctx.work.join("cargo"))
            .env("CRITERION_HOME", &home),
        "cargo bench --manifest-path bench/Cargo.toml",
    )?;
    let mut results = Vec::new();
    collect(&home, &mut results)?;
    results.sort_by(|a, b| a.id.cmp(&b.id));
    if results.is_empty() {
        bail!("criterion wrote no results under {}", home.display());
    }
    Ok(results)
}

/// Finds every `new/benchmark.json` under `dir` (criterion's layout:
/// `<group>/<function>/new/{benchmark,estimates}.json`).
fn collect(dir: &Path, results: &mut Vec<Micro>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if !path.is_dir() {
            continue;
        }
        let benchmark = path.join("new").join("benchmark.json");
        if benchmark.exists() {
            let read = |name: &str| -> Result<serde_json::Value> {
                let file = path.join("new").join(name);
                let bytes = std::fs::read(&file)?;
                serde_json::from_slice(&bytes)
                    .with_context(|| format!("parsing {}", file.display()))
            };
            let meta = read("benchmark.json")?;
            let estimates = read("estimates.json")?;
            let id = meta
                .get("full_id")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned();
            let median_ns = estimates
                .pointer("/median/point_estimate")
                .and_then(serde_json::Value::as_f64)
                .context("estimates.json has no median")?;
            let bytes = meta
                .pointer("/throughput/Bytes")
                .and_then(serde_json::Value::as_u64);
            results.push(Micro {
                id,
                median_ns,
                bytes,
            });
        } else if path.file_name().is_some_and(|n| n != "report") {
            collect(&path, results)?;
        }
    }
    Ok(())
}
