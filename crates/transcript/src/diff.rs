//! The unified diff of two rendered transcripts, the view students study.

use std::io::IsTerminal as _;

use similar::{ChangeTag, TextDiff};

use crate::explain::{Note, notes_per_line};

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

/// [`diff`], with each removed or added line followed by its notes (`# ` lines, from
/// [`crate::explain`] run over that side's whole transcript): why the two dialogues differ
/// where they do.
pub fn diff_explained(old: &str, new: &str, old_name: &str, new_name: &str, color: bool) -> Diff {
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
    let (old_notes, new_notes) = (notes_per_line(old), notes_per_line(new));
    let mut plain = format!("--- {old_name}\n+++ {new_name}\n");
    let push_notes = |out: &mut String, notes: &[Note], side: Option<&str>| {
        for note in notes {
            out.push_str("# ");
            if let Some(side) = side {
                out.push_str(side);
                out.push_str(": ");
            }
            out.push_str(&note.line());
            out.push('\n');
        }
    };
    for hunk in text_diff.unified_diff().context_radius(3).iter_hunks() {
        plain.push_str(&format!("{}\n", hunk.header()));
        let changes: Vec<_> = hunk.iter_changes().collect();
        // The hunk's core runs from its first to its last changed line; the lines between
        // are explained too, as each side reads them.
        let changed = |change: &similar::Change<&str>| change.tag() != ChangeTag::Equal;
        let first = changes.iter().position(changed).unwrap_or(0);
        let last = changes.iter().rposition(changed).unwrap_or(0);
        for (at, change) in changes.iter().enumerate() {
            let sign = match change.tag() {
                ChangeTag::Equal => ' ',
                ChangeTag::Delete => '-',
                ChangeTag::Insert => '+',
            };
            plain.push(sign);
            plain.push_str(change.value().strip_suffix('\n').unwrap_or(change.value()));
            plain.push('\n');
            let old_side = change.old_index().and_then(|i| old_notes.get(i));
            let new_side = change.new_index().and_then(|i| new_notes.get(i));
            match change.tag() {
                ChangeTag::Delete => {
                    push_notes(&mut plain, old_side.map_or(&[], Vec::as_slice), None)
                }
                ChangeTag::Insert => {
                    push_notes(&mut plain, new_side.map_or(&[], Vec::as_slice), None)
                }
                ChangeTag::Equal if at > first && at < last => {
                    let (old_side, new_side) = (
                        old_side.map_or(&[][..], Vec::as_slice),
                        new_side.map_or(&[][..], Vec::as_slice),
                    );
                    if old_side == new_side {
                        push_notes(&mut plain, old_side, None);
                    } else {
                        push_notes(&mut plain, old_side, Some(old_name));
                        push_notes(&mut plain, new_side, Some(new_name));
                    }
                }
                ChangeTag::Equal => {}
            }
        }
    }
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

    #[test]
    fn an_explained_diff_is_the_diff_plus_notes_on_changed_lines() {
        let old = "S: 220 mx\nC: EHLO a\nS: 250 mx\nC: MAIL FROM:<a@b>\nC: RCPT TO:<c@d>\nS: 250 ok\nS: 250 ok\n";
        let new = "S: 220 mx\nC: EHLO a\nS: 250 mx\nC: MAIL FROM:<a@b>\nS: 250 ok\nC: RCPT TO:<c@d>\nS: 250 ok\n";
        let plain = diff(old, new, "raw-client", "lib-client", false);
        let explained = diff_explained(old, new, "raw-client", "lib-client", false);
        let stripped: String = explained
            .unified
            .lines()
            .filter(|line| !line.starts_with('#'))
            .map(|line| format!("{line}\n"))
            .collect();
        assert_eq!(stripped, plain.unified);
        assert_eq!(explained.changed_lines, plain.changed_lines);
        // The RCPT line is the same on both sides, but only raw-client sent it before the
        // reply to MAIL: the explanation of the hunk says so, side by side.
        assert!(
            explained.unified.contains(
                " C: RCPT TO:<c@d>\n# RCPT TO names one envelope recipient (To, Cc and Bcc alike) (RFC 5321 §4.1.1.3)\n"
            ) || explained.unified.contains("# raw-client: RCPT TO names"),
            "{}",
            explained.unified
        );
        assert!(
            explained
                .unified
                .contains("# raw-client: sent before the reply to MAIL FROM"),
            "{}",
            explained.unified
        );
    }
}
