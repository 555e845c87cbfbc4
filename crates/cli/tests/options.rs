//! No command line can make the shared option parser panic: any mix of the clients' flags with
//! any values ends in a plan or in a one-line failure sentence with a sysexits code.

use clap::Parser as _;
use cli::{Exit, Plan};
use proptest::prelude::*;

#[derive(Debug, clap::Parser)]
struct Arguments {
    #[command(flatten)]
    options: cli::Options,
}

/// Every flag that takes a value.
const WITH_VALUE: &[&str] = &[
    "--server",
    "--tls",
    "--ca-file",
    "--pin-sha256",
    "--helo-name",
    "--user",
    "--password-env",
    "--password-file",
    "--password",
    "--from",
    "--to",
    "--cc",
    "--bcc",
    "--reply-to",
    "--subject",
    "--body",
    "--body-file",
    "--html-file",
    "--attach",
    "--header",
    "--date",
    "--message-id",
    "--timeout",
    "--data-timeout",
    "--transcript-format",
];

/// The switches.
const SWITCHES: &[&str] = &[
    "--insecure",
    "--allow-plaintext-auth",
    "--show-secrets",
    "--details",
    "--quiet",
    "--keep",
];

/// Values that are interesting to the parsers: numbers at the edges, durations with and
/// without units, addresses with line breaks, brackets, NUL, non-ASCII; but never `-` (which
/// would read standard input) nor an absolute path (which could name an endless device).
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,25}(ms|s|m|h|d)?",
        "[a-z0-9.@<>\\[\\]:; \"=\\r\\n\\t\\u{0}é-]{0,40}",
        Just("18446744073709551615".to_owned()),
        Just("999999999999999999m".to_owned()),
        Just("[::1]:25".to_owned()),
        Just("a@b\r\nRCPT TO:<c@d>".to_owned()),
    ]
    .prop_filter("no standard input, no absolute path", |value| {
        value != "-" && !value.starts_with('/')
    })
}

fn argument() -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        (prop::sample::select(WITH_VALUE), value())
            .prop_map(|(flag, value)| vec![flag.to_owned(), value]),
        prop::sample::select(SWITCHES).prop_map(|flag| vec![flag.to_owned()]),
        value().prop_map(|value| vec![value]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_command_line_ends_in_a_plan_or_a_sentence(
        arguments in prop::collection::vec(argument(), 0..8)
    ) {
        let argv: Vec<String> = std::iter::once("client".to_owned())
            .chain(arguments.into_iter().flatten())
            .collect();
        // clap's own refusals become exit 64 in the binaries (`cli::parse_arguments`).
        if let Ok(parsed) = Arguments::try_parse_from(&argv)
            && let Err(failure) = Plan::from_options(&parsed.options, &mut |_| {})
        {
            let sentence = failure.to_string();
            prop_assert!(!sentence.is_empty());
            prop_assert!(!sentence.contains(['\r', '\n']), "{sentence:?}");
            prop_assert!(failure.exit() != Exit::Sent);
        }
    }
}
