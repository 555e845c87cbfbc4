//! lettre's connection pool, for `cargo xtask bench`: sends one prebuilt message N times
//! through one pooled `SmtpTransport` (at most one connection, reused), plaintext, no AUTH —
//! what lib-client would do if it kept lettre's pool, which it does not (each lib-client run
//! is one message on one connection, like the raw-client dialogue it is compared with).
//!
//! Usage: `lettre-pool HOST PORT COUNT FROM TO MESSAGE.eml`

use lettre::address::{Address, Envelope};
use lettre::transport::smtp::PoolConfig;
use lettre::{SmtpTransport, Transport as _};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, host, port, count, from, to, file] = args.as_slice() else {
        return Err("usage: lettre-pool HOST PORT COUNT FROM TO MESSAGE.eml".into());
    };
    let transport = SmtpTransport::builder_dangerous(host.as_str())
        .port(port.parse()?)
        .pool_config(PoolConfig::new().max_size(1))
        .build();
    let envelope = Envelope::new(Some(from.parse::<Address>()?), vec![to.parse::<Address>()?])?;
    let mut message = std::fs::read(file)?;
    // lettre writes "\r\n.\r\n" after the data itself.
    if message.ends_with(b"\r\n") {
        message.truncate(message.len() - 2);
    }
    for _ in 0..count.parse::<usize>()? {
        transport.send_raw(&envelope, &message)?;
    }
    Ok(())
}
