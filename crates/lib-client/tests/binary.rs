//! The `lib-client` binary on a fresh machine: the embedded default sends a real STARTTLS + AUTH
//! dialogue, prints it with the secrets redacted, and says where the message was stored;
//! bad input fails before connecting, with the sysexits code; `--help` lists every option.

const BINARY: &str = env!("CARGO_BIN_EXE_lib-client");

#[path = "../../../tests/shared/binary_checks.rs"]
mod binary_checks;
