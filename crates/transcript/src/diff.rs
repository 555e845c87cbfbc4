//! The unified diff of two rendered transcripts, the view students study.

use std::io::IsTerminal as _;

use similar::{ChangeTag, TextDiff};

/// The result of comparing two transcripts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    /// The unified diff; empty when the transcripts are identical.
    pub unified: String,
    /// How many lines were removed or added.
    pub changed_lines: usize,
}

impl Diff {
    /// True when the two transcripts are identical.
    pub fn is_identical(&self) -> bool {
        self.changed_lines == 0
    }

    /// The one-line verdict: `identical`, or how many lines differ.
    pub fn verdict(&self) -> String {
        match self.changed_lines {
            0 => "identical".to_owned(),
            1 => "1 line differs".to_owned(),
            n => format!("{n} lines differ"),
        }
    }
}

/// Diffs two rendered transcripts; `color` adds ANSI colors to the unified text.
pub fn diff(old: &str, new: &str, old_name: &str, new_name: &str, color: bool) -> Diff {
    let text_diff = TextDiff::from_lines(old, new);
    let changed_lines = text_diff
        .iter_all_changes()
        .filter(|change| change.tag() != ChangeTag::Equal)
        .count();
    if changed_lines == 0 {
        return Diff {
            unified: String::new(),
            changed_lines,
        };
    }
    let plain = text_diff
        .unified_diff()
        .context_radius(3)
        .header(old_name, new_name)
        .to_string();
    let unified = if color { colorize(&plain) } else { plain };
    Diff {
        unified,
        changed_lines,
    }
}

/// Colors are for people: only on a terminal, and never when `NO_COLOR` is set (no-color.org).
pub fn color_wanted() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
        && std::io::stdout().is_terminal()
}

fn colorize(plain: &str) -> String {
    let mut out = String::with_capacity(plain.len() + 64);
    for line in plain.split_inclusive('\n') {
        let color = if line.starts_with("+++") || line.starts_with("---") {
            "\x1b[1m"
        } else if line.starts_with('+') {
            "\x1b[32m"
        } else if line.starts_with('-') {
            "\x1b[31m"
        } else if line.starts_with("@@") {
            "\x1b[36m"
        } else {
            ""
        };
        if color.is_empty() {
            out.push_str(line);
        } else {
            let body = line.strip_suffix('\n').unwrap_or(line);
            out.push_str(color);
            out.push_str(body);
            out.push_str("\x1b[0m");
            if line.ends_with('\n') {
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_transcripts() {
        let d = diff("C: EHLO a\n", "C: EHLO a\n", "raw", "lib", false);
        assert!(d.is_identical());
        assert_eq!(d.verdict(), "identical");
        assert!(d.unified.is_empty());
    }

    #[test]
    fn differing_transcripts() {
        let old = "C: MAIL FROM:<a@b>\nS: 250 ok\nC: RCPT TO:<c@d>\nS: 250 ok\n";
        let new = "C: MAIL FROM:<a@b>\nC: RCPT TO:<c@d>\nS: 250 ok\nS: 250 ok\n";
        let d = diff(old, new, "raw-client", "lib-client", false);
        assert_eq!(d.changed_lines, 2);
        assert_eq!(d.verdict(), "2 lines differ");
        assert!(d.unified.starts_with("--- raw-client\n+++ lib-client\n@@"));
        assert!(!d.unified.contains('\x1b'));
        let colored = diff(old, new, "raw-client", "lib-client", true);
        assert!(colored.unified.contains("\x1b[31m-"));
        assert!(colored.unified.contains("\x1b[32m+"));
    }
}
