//! `test-server`: run the local ESMTP test server until Ctrl-C.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use test_server::{Config, Faults, HttpConfig, LineEndings, Server, Session, parse_duration};

/// A local ESMTP server for tests and teaching: STARTTLS, implicit TLS, AUTH PLAIN, LOGIN,
/// XOAUTH2, OAUTHBEARER and SCRAM-SHA-256, PIPELINING, SIZE, 8BITMIME, SMTPUTF8, CHUNKING
/// (BDAT), BINARYMIME, DSN, REQUIRETLS; stores every message with its envelope and
/// transcript; injects faults on request.
#[derive(Debug, Parser)]
#[command(name = "test-server", version, args_conflicts_with_subcommands = true)]
struct Arguments {
    #[command(subcommand)]
    command: Option<Subcommand>,
    #[command(flatten)]
    options: Options,
}

/// What to do instead of serving.
#[derive(Debug, clap::Subcommand)]
enum Subcommand {
    /// Print a stored transcript (a message's .transcript, or sessions/*.transcript) with
    /// what each line means and which RFC defines it, after it on lines starting with "# ".
    Explain {
        /// The transcript file; "-" for standard input.
        file: PathBuf,
    },
    /// Grade an SMTP client: play a kind of server (--profile), run the client given after
    /// "--" with the server in its environment (or wait for one run by hand), and print
    /// which RFC rules it kept and broke. Exit 0: all passed; 1: one failed; 2: no client.
    Lab(test_server::lab::LabOptions),
}

/// The options of the server itself.
#[derive(Debug, clap::Args)]
struct Options {
    /// Address of the plaintext listener (STARTTLS offered).
    #[arg(long, default_value = "127.0.0.1:2525")]
    listen: SocketAddr,
    /// Address of an implicit TLS listener (RFC 8314), e.g. 127.0.0.1:4650.
    #[arg(long)]
    tls_listen: Option<SocketAddr>,
    /// Directory for stored messages (default: a fresh directory under the system
    /// temporary directory). Ids continue after those already there.
    #[arg(long)]
    store: Option<PathBuf>,
    /// Name the server gives itself in the greeting and EHLO reply.
    #[arg(long, default_value = "localhost")]
    hostname: String,
    /// A user that may authenticate; repeat together with --password for more users.
    #[arg(long, requires = "password")]
    user: Vec<String>,
    /// The password of the --user at the same position.
    #[arg(long, requires = "user")]
    password: Vec<String>,
    /// A valid OAuth 2.0 bearer token for XOAUTH2 and OAUTHBEARER, as USER:TOKEN
    /// (repeatable); any other token gets the mechanism's error status and 535.
    #[arg(long, value_name = "USER:TOKEN")]
    oauth2_token: Vec<String>,
    /// Exactly the AUTH mechanisms to offer and accept, in this order, comma-separated:
    /// PLAIN, LOGIN, XOAUTH2, OAUTHBEARER, SCRAM-SHA-256 (default: PLAIN LOGIN with users,
    /// then XOAUTH2 OAUTHBEARER with tokens).
    #[arg(long, value_name = "LIST")]
    auth_mechanisms: Option<String>,
    /// The SCRAM-SHA-256 iteration count (i=), at least 1.
    #[arg(long, value_name = "N", default_value_t = Config::default().scram_iterations)]
    scram_iterations: u32,
    /// Offer and accept AUTH without TLS.
    #[arg(long)]
    auth_without_tls: bool,
    /// SIZE limit in octets (0 = none).
    #[arg(long, default_value_t = Config::default().size_limit)]
    size_limit: u64,
    /// Most recipients per message.
    #[arg(long, default_value_t = Config::default().max_recipients)]
    max_recipients: usize,
    /// Most simultaneous connections (0 = no cap).
    #[arg(long, default_value_t = Config::default().max_connections)]
    max_connections: usize,
    /// Idle timeout per read, e.g. 300ms, 30s, 5m.
    #[arg(long, default_value = "5m", value_parser = duration)]
    idle_timeout: Duration,
    /// Total time limit per connection.
    #[arg(long, default_value = "30m", value_parser = duration)]
    session_timeout: Duration,
    /// Accept bare LF / bare CR in message data and store them as CRLF (default: refuse
    /// with 550 5.6.11, the SMTP smuggling defence).
    #[arg(long)]
    permissive: bool,
    /// Do not advertise PIPELINING; bytes sent right after the end of data are refused.
    #[arg(long)]
    no_pipelining: bool,
    /// Do not sync stored files before answering 250: faster under load, but a crash may
    /// lose messages already acknowledged.
    #[arg(long)]
    no_sync: bool,
    /// Certificate chain PEM file (default: generate a CA and a localhost certificate).
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// Private key PEM file for --cert.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Inject a fault (repeatable; all of them apply, stalls at one stage add up):
    /// reject-rcpt=ADDR, tempfail-rcpt=ADDR, tempfail-mail, reject-data, drop-mid-data,
    /// reject-chunk=K (the K-th BDAT chunk of each transaction gets 554), drop-mid-chunk,
    /// stall=STAGE:DURATION (STAGE: greeting, ehlo, mail, rcpt, data, end-of-data, bdat,
    /// quit), no-starttls, no-8bitmime, no-chunking, auth-login-only, reject-auth,
    /// inject-after-starttls=TEXT, scram-bad-server-signature, scram-bad-server-first.
    #[arg(long, value_name = "FAULT")]
    fault: Vec<String>,
    /// Serve the web inbox and REST API on this address (127.0.0.1:8025 when given without
    /// one): messages, sessions with their transcripts, diffs, faults at run time.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = test_server::DEFAULT_HTTP_ADDR)]
    http: Option<SocketAddr>,
    /// Ask every web request for this user and the password in the file's first line
    /// (HTTP basic auth); needed to serve --http on an address other than loopback.
    #[arg(long, value_name = "USER:PASSWORD_FILE", requires = "http")]
    http_auth: Option<String>,
    /// Serve --http on a non-loopback address without --http-auth: anyone who can reach it
    /// reads every message.
    #[arg(long, requires = "http")]
    http_insecure_public: bool,
}

/// The web inbox's settings from the options, the password read from its file.
fn http_config(options: &Options) -> Result<Option<HttpConfig>, String> {
    let Some(listen) = options.http else {
        return Ok(None);
    };
    let auth = match &options.http_auth {
        None => None,
        Some(given) => {
            let (user, file) = given
                .split_once(':')
                .filter(|(user, file)| !user.is_empty() && !file.is_empty())
                .ok_or("--http-auth needs USER:PASSWORD_FILE, a user name, a colon and the file the password is in")?;
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read the --http-auth password file {file}: {e}"))?;
            let password = text.lines().next().unwrap_or("").to_owned();
            if password.is_empty() {
                return Err(format!(
                    "the --http-auth password file {file} is empty; put the password on its first line"
                ));
            }
            Some((user.to_owned(), password))
        }
    };
    Ok(Some(HttpConfig {
        listen,
        auth,
        insecure_public: options.http_insecure_public,
    }))
}

/// `test-server explain FILE`: the stored transcript with its notes.
fn explain(file: &Path) -> ExitCode {
    let text = if file == Path::new("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map(|_| text)
    } else {
        std::fs::read_to_string(file)
    };
    match text {
        Ok(text) => {
            print!("{}", transcript::explain::annotate_text(&text));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "test-server: cannot read the transcript {}: {e}; give the path of a .transcript file",
                file.display()
            );
            ExitCode::from(66)
        }
    }
}

fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

fn config(options: Options) -> Result<Config, String> {
    let web = options.http.is_some();
    if options.user.len() != options.password.len() {
        return Err("give one --password for each --user".to_owned());
    }
    let mut faults = Faults::default();
    for spec in &options.fault {
        faults.add(spec).map_err(|e| e.to_string())?;
    }
    let mut oauth2_tokens = Vec::new();
    for pair in &options.oauth2_token {
        // The token is a secret: the sentence never repeats it.
        match pair.split_once(':') {
            Some((user, token)) if !user.is_empty() && !token.is_empty() => {
                oauth2_tokens.push((user.to_owned(), token.to_owned()));
            }
            _ => {
                return Err(
                    "--oauth2-token needs USER:TOKEN, a user name, a colon and the token"
                        .to_owned(),
                );
            }
        }
    }
    let auth_mechanisms = options.auth_mechanisms.map(|list| {
        list.split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect()
    });
    let certificate = match (options.cert, options.key) {
        (Some(cert), Some(key)) => {
            let read = |path: &PathBuf| {
                std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))
            };
            Some((read(&cert)?, read(&key)?))
        }
        _ => None,
    };
    let config = Config {
        listen: options.listen,
        tls_listen: options.tls_listen,
        store: options.store,
        hostname: options.hostname,
        users: options.user.into_iter().zip(options.password).collect(),
        oauth2_tokens,
        auth_mechanisms,
        scram_iterations: options.scram_iterations,
        auth_without_tls: options.auth_without_tls,
        size_limit: options.size_limit,
        max_recipients: options.max_recipients,
        max_connections: options.max_connections,
        idle_timeout: options.idle_timeout,
        session_timeout: options.session_timeout,
        line_endings: if options.permissive {
            LineEndings::Permissive
        } else {
            LineEndings::Strict
        },
        pipelining: !options.no_pipelining,
        sync: !options.no_sync,
        // The binary's store is for inspection after it stops.
        remove_store_on_drop: false,
        faults,
        certificate,
        // The web inbox grades sessions with the lab's checks, which read these.
        record_timings: web,
        ..Config::default()
    };
    // A configuration that cannot work is a usage error (64), not a failed start (69).
    config.check().map_err(|e| e.to_string())?;
    Ok(config)
}

fn main() -> ExitCode {
    let arguments = match Arguments::try_parse() {
        Ok(arguments) => arguments,
        Err(error) => {
            let _ = error.print();
            let help = matches!(
                error.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            );
            return ExitCode::from(if help { 0 } else { 64 });
        }
    };
    match arguments.command {
        Some(Subcommand::Explain { file }) => return explain(&file),
        Some(Subcommand::Lab(options)) => return ExitCode::from(test_server::lab::run(&options)),
        None => {}
    }
    let http = match http_config(&arguments.options) {
        Ok(http) => http,
        Err(e) => {
            eprintln!("test-server: {e}");
            return ExitCode::from(64);
        }
    };
    let config = match config(arguments.options) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("test-server: {e}");
            return ExitCode::from(64);
        }
    };
    let server = match Server::start(config) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("test-server: {e}");
            return ExitCode::from(69);
        }
    };
    let ca_path = server.store_dir().join("ca.pem");
    if let Err(e) = std::fs::write(&ca_path, server.ca_pem()) {
        eprintln!("test-server: cannot write {}: {e}", ca_path.display());
        return ExitCode::from(73);
    }
    println!("listening on {} (SMTP, STARTTLS)", server.addr());
    if let Some(addr) = server.tls_addr() {
        println!("listening on {addr} (implicit TLS)");
    }
    let web = match http.map(|http| server.serve_http(http)).transpose() {
        Ok(web) => web,
        Err(e) => {
            eprintln!("test-server: {e}");
            return ExitCode::from(match e {
                test_server::Error::Config(_) => 64,
                _ => 69,
            });
        }
    };
    if let Some(web) = &web {
        println!(
            "web inbox on {} (REST API under {}api/v1/)",
            web.url(),
            web.url()
        );
    }
    println!("trust this CA: {}", ca_path.display());
    println!("storing in {}", server.store_dir().display());
    println!("press Ctrl-C to stop");
    // Report each finished connection. Messages are on disk before their 250, so being
    // killed by Ctrl-C loses nothing.
    let mut seen = 0;
    loop {
        let sessions = server.wait_for_sessions_after(seen, Duration::from_secs(3600));
        for session in &sessions {
            println!("{}", report(session, server.store_dir()));
        }
        seen += sessions.len();
    }
}

/// The log line of one finished connection: who, why it ended, what it stored, and where
/// its transcript is.
fn report(session: &Session, store: &Path) -> String {
    let eml = |id: &String| store.join(format!("{id}.eml")).display().to_string();
    let stored = match session.message_ids.as_slice() {
        [] => "nothing stored".to_owned(),
        [one] => format!("stored {}", eml(one)),
        few @ [_, _] | few @ [_, _, _] => {
            let names: Vec<String> = few.iter().map(eml).collect();
            format!("stored {}", names.join(", "))
        }
        [first, .., last] => format!(
            "stored {} messages, {} to {}",
            session.message_ids.len(),
            eml(first),
            eml(last)
        ),
    };
    let transcript = match &session.transcript_file {
        Ok(path) => format!("transcript in {}", path.display()),
        Err(why) => format!("no transcript saved ({why})"),
    };
    format!(
        "connection from {} finished: {}; {stored}; {transcript}",
        session.peer, session.reason
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_server::SessionEnd;

    #[test]
    fn auth_options_become_the_config() {
        let arguments = Arguments::try_parse_from([
            "test-server",
            "--oauth2-token",
            "alice@example.com:ya29.a:b",
            "--oauth2-token",
            "bob:t2",
            "--auth-mechanisms",
            "SCRAM-SHA-256, login,,XOAUTH2",
            "--scram-iterations",
            "10000",
        ])
        .expect("arguments");
        let given = config(arguments.options).expect("config");
        assert_eq!(
            given.oauth2_tokens,
            [
                ("alice@example.com".to_owned(), "ya29.a:b".to_owned()),
                ("bob".to_owned(), "t2".to_owned())
            ]
        );
        assert_eq!(
            given.auth_mechanisms,
            Some(vec![
                "SCRAM-SHA-256".to_owned(),
                "login".to_owned(),
                "XOAUTH2".to_owned()
            ])
        );
        assert_eq!(given.scram_iterations, 10000);
        let defaults = Arguments::try_parse_from(["test-server"]).expect("arguments");
        let defaults = config(defaults.options).expect("config");
        assert!(defaults.oauth2_tokens.is_empty());
        assert_eq!(defaults.auth_mechanisms, None);
        assert_eq!(defaults.scram_iterations, 4096);
    }

    #[test]
    fn http_options_become_the_web_config() {
        let parse = |args: &[&str]| {
            let arguments = Arguments::try_parse_from(
                std::iter::once("test-server").chain(args.iter().copied()),
            )
            .expect("arguments");
            http_config(&arguments.options)
        };
        assert!(parse(&[]).expect("no web").is_none());
        let bare = parse(&["--http"]).expect("ok").expect("web");
        assert_eq!(bare.listen.to_string(), "127.0.0.1:8025");
        assert!(bare.auth.is_none() && !bare.insecure_public);
        let given = parse(&["--http", "[::1]:9000", "--http-insecure-public"])
            .expect("ok")
            .expect("web");
        assert_eq!(given.listen.to_string(), "[::1]:9000");
        assert!(given.insecure_public);
        let dir =
            std::env::temp_dir().join(format!("test-server-http-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("password");
        std::fs::write(&file, "s3cret:with colon\nignored\n").expect("write");
        let spec = format!("admin:{}", file.display());
        let auth = parse(&["--http", "--http-auth", &spec])
            .expect("ok")
            .expect("web")
            .auth;
        assert_eq!(
            auth,
            Some(("admin".to_owned(), "s3cret:with colon".to_owned()))
        );
        std::fs::write(&file, "\n").expect("write");
        let empty = parse(&["--http", "--http-auth", &spec]).expect_err("empty");
        assert!(
            empty.contains("is empty; put the password on its first line"),
            "{empty}"
        );
        let missing =
            parse(&["--http", "--http-auth", "admin:/no/such/file"]).expect_err("missing");
        assert!(
            missing.starts_with("cannot read the --http-auth password file /no/such/file"),
            "{missing}"
        );
        let shape = parse(&["--http", "--http-auth", "admin"]).expect_err("no colon");
        assert!(shape.contains("USER:PASSWORD_FILE"), "{shape}");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            Arguments::try_parse_from(["test-server", "--http-auth", "a:b"]).is_err(),
            "needs --http"
        );
    }

    #[test]
    fn the_log_line_says_why_what_and_where() {
        let server = Server::start(Config {
            remove_store_on_drop: true,
            ..Config::default()
        })
        .expect("server");
        let store = server.store_dir().to_owned();
        {
            let tcp = std::net::TcpStream::connect(server.addr()).expect("connect");
            let mut greeting = [0u8; 64];
            let _ = std::io::Read::read(&mut &tcp, &mut greeting);
        }
        let mut session = server
            .wait_for_sessions(1, Duration::from_secs(10))
            .into_iter()
            .next()
            .expect("a session");
        let transcript = store.join("sessions").join("000001.transcript");
        assert_eq!(
            report(&session, &store),
            format!(
                "connection from {} finished: the client closed the connection without QUIT; \
                 nothing stored; transcript in {}",
                session.peer,
                transcript.display()
            )
        );
        session.reason = SessionEnd::Quit;
        session.message_ids = vec!["000001".into()];
        let one = format!("stored {}", store.join("000001.eml").display());
        assert!(report(&session, &store).contains(&format!(": the client sent QUIT; {one};")));
        session.message_ids = (1..=3).map(|n| format!("00000{n}")).collect();
        let line = report(&session, &store);
        assert!(line.contains("000002.eml, "), "{line}");
        session.message_ids = (1..=9).map(|n| format!("00000{n}")).collect();
        let line = report(&session, &store);
        let many = format!(
            "stored 9 messages, {} to {};",
            store.join("000001.eml").display(),
            store.join("000009.eml").display()
        );
        assert!(line.contains(&many), "{line}");
        session.transcript_file = Err("disk full".into());
        assert!(report(&session, &store).ends_with("; no transcript saved (disk full)"));
    }
}
