//! The web inbox's REST API over a real socket: every documented route answers as the
//! OpenAPI file describes, hostile messages come back escaped and sandboxed, the security
//! rules hold, faults change at run time, the wait and the live stream see new messages.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;
use test_server::{Config, Http, HttpConfig};

use crate::support::{Client, Harness, auth_config, start};

/// A server with its web inbox on a free loopback port.
fn web(config: Config) -> (Harness, Http) {
    let server = start(config);
    let http = server
        .serve_http(HttpConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            auth: None,
            insecure_public: false,
        })
        .expect("the web inbox starts");
    (server, http)
}

/// An HTTP answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request on its own connection (a test needs no more than this).
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !extra.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    tcp.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).expect("read the answer");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header section");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&rest[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&rest[end + 2..end + 2 + size]);
        rest = &rest[end + 2 + size + 2..];
    }
    out
}

fn get(addr: SocketAddr, path: &str) -> Answer {
    request(addr, "GET", path, &[], "")
}

fn json_request(addr: SocketAddr, method: &str, path: &str, body: &str) -> Answer {
    request(
        addr,
        method,
        path,
        &[("Content-Type", "application/json")],
        body,
    )
}

/// Sends one message over plaintext SMTP and returns the final reply.
fn send(server: &Harness, from: &str, to: &str, message: &str) -> String {
    let mut client = Client::connect(server.addr());
    client.expect("EHLO client.example", "250");
    let wire = format!("{}\r\n.\r\n", message.replace("\n", "\r\n"));
    let reply = client.send_message(from, &[to], wire.as_bytes());
    client.expect("QUIT", "221");
    reply
}

/// A message whose every field tries to script the page.
const HOSTILE: &str = "From: \"<img src=x onerror=alert(1)>\" <evil@example.com>\n\
To: \"</td><script>alert(2)</script>\" <victim@example.com>\n\
Subject: <script>document.title='pwned'</script> javascript:alert(3)\n\
MIME-Version: 1.0\n\
Content-Type: multipart/mixed; boundary=b\n\
\n\
--b\n\
Content-Type: text/html; charset=utf-8\n\
\n\
<p>hi</p><script>parent.document.title='pwned'</script><img src=\"http://127.0.0.1:9/x.png\" onerror=\"alert(4)\"><a href=\"javascript:alert(5)\">x</a>\n\
--b\n\
Content-Type: text/html\n\
Content-Disposition: attachment; filename=\"../../<script>x</script>evil.html\"\n\
\n\
<script>alert(6)</script>\n\
--b--";

/// The schema of a response, from the OpenAPI file, checked by boon.
struct Spec {
    document: Value,
    schemas: boon::Schemas,
    compiler: boon::Compiler,
}

impl Spec {
    fn load() -> Spec {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json"),
        )
        .expect("openapi.json");
        let document: Value = serde_json::from_str(&text).expect("openapi.json is JSON");
        let mut compiler = boon::Compiler::new();
        compiler
            .add_resource("openapi.json", document.clone())
            .expect("add the document");
        Spec {
            document,
            schemas: boon::Schemas::new(),
            compiler,
        }
    }

    /// Checks a JSON answer against the schema the file gives `path`'s `method` for its
    /// status.
    fn check(&mut self, path: &str, method: &str, answer: &Answer) {
        let status = answer.status.to_string();
        let response = &self.document["paths"][path][method]["responses"][&status];
        assert!(
            response.is_object(),
            "{method} {path} answered {status}, which openapi.json does not list: {}",
            answer.text()
        );
        let Some(content) = response["content"].as_object() else {
            return;
        };
        if !content.contains_key("application/json") {
            return;
        }
        let pointer = format!(
            "openapi.json#/paths/{}/{method}/responses/{status}/content/application~1json/schema",
            path.replace('~', "~0").replace('/', "~1")
        );
        let index = self
            .compiler
            .compile(&pointer, &mut self.schemas)
            .unwrap_or_else(|e| panic!("the schema of {method} {path} {status} compiles: {e:#}"));
        let json = answer.json();
        if let Err(e) = self.schemas.validate(&json, index) {
            panic!("{method} {path} {status} does not follow openapi.json: {e}\n{json:#}");
        }
    }
}

/// Every route and method of the OpenAPI file answers, and each JSON answer follows its
/// schema — on a server with a stored message, a failed session and a fault.
#[test]
fn every_documented_route_answers_as_documented() {
    let (server, http) = web(auth_config());
    let addr = http.addr();
    // A failed AUTH session, then a message over TLS with AUTH.
    let mut client = Client::connect(server.addr()).starttls(server.ca_pem());
    client.expect("EHLO client.example", "250");
    client.expect(
        &format!("AUTH PLAIN {}", crate::support::b64(b"\0alice\0wrong")),
        "535",
    );
    client.expect("QUIT", "221");
    let mut client = Client::connect(server.addr()).starttls(server.ca_pem());
    client.expect("EHLO client.example", "250");
    client.expect(
        &format!("AUTH PLAIN {}", crate::support::b64(b"\0alice\0s3cret")),
        "235",
    );
    client.send_message(
        "evil@example.com",
        &["victim@example.com"],
        format!("{}\r\n.\r\n", HOSTILE.replace('\n', "\r\n")).as_bytes(),
    );
    client.expect("QUIT", "221");
    let sessions = server.wait_for_sessions(2, Duration::from_secs(10));
    assert_eq!(sessions.len(), 2);

    let mut spec = Spec::load();
    let mut paths: Vec<(String, Vec<String>)> = spec.document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| ["get", "post", "put", "delete"].contains(&k.as_str()))
                .cloned()
                .collect();
            (path.clone(), methods)
        })
        .collect();
    // Longer paths first: one message is deleted before all of them are.
    paths.sort_by_key(|(path, _)| std::cmp::Reverse(path.len()));
    let mut checked = 0;
    // Reads first, then the changes (a deleted message would answer 404).
    for order in ["get", "post", "put", "delete"] {
        for (path, methods) in &paths {
            if !methods.iter().any(|m| m == order) {
                continue;
            }
            let concrete = path
                .replace("/messages/{id}", "/messages/000001")
                .replace("/sessions/{id}", "/sessions/000002")
                .replace("{part}", "1");
            let query = match path.as_str() {
                "/api/v1/diff" => "?a=000001&b=000002",
                "/api/v1/messages/wait" => "?timeout=1s",
                _ => "",
            };
            let target = format!("{concrete}{query}");
            let answer = match (order, path.as_str()) {
                ("get", "/api/v1/events") => continue,
                ("post", _) => json_request(addr, "POST", &target, r#"{"fault":"reject-data"}"#),
                ("put", _) => json_request(
                    addr,
                    "PUT",
                    &target,
                    r#"{"faults":["stall=mail:1ms","tempfail-rcpt=x@example.com"]}"#,
                ),
                (method, _) => request(addr, &method.to_ascii_uppercase(), &target, &[], ""),
            };
            assert!(
                answer.status < 300,
                "{order} {target} answered {}: {}",
                answer.status,
                answer.text()
            );
            spec.check(path, order, &answer);
            checked += 1;
        }
    }
    assert_eq!(
        checked, 18,
        "every documented route and method but the event stream"
    );
    // The stream answers too, as an event stream (read in its own test).
    assert!(spec.document["paths"]["/api/v1/events"]["get"].is_object());
}

/// What the API gives of a hostile message is data, never markup: the JSON carries the
/// strings as they are, the HTML part is served under a policy that runs no script and
/// loads nothing remote, attachments download under a safe name, and the page itself
/// allows only its own script.
#[test]
fn a_hostile_message_is_served_escaped_and_sandboxed() {
    let (server, http) = web(Config::default());
    let addr = http.addr();
    assert!(send(&server, "evil@example.com", "victim@example.com", HOSTILE).starts_with("250"));

    let list = get(addr, "/api/v1/messages").json();
    let summary = &list["messages"][0];
    assert_eq!(
        summary["subject"],
        "<script>document.title='pwned'</script> javascript:alert(3)"
    );
    assert_eq!(
        summary["from"],
        "<img src=x onerror=alert(1)> <evil@example.com>"
    );
    let detail = get(addr, "/api/v1/messages/000001").json();
    assert_eq!(detail["html"], true);
    let attachment = &detail["attachments"][0];
    assert_eq!(attachment["filename"], "script_evil.html");

    let html = get(addr, "/api/v1/messages/000001/html");
    assert_eq!(html.status, 200);
    let policy = html.header("content-security-policy").expect("a policy");
    assert!(policy.starts_with("sandbox;"), "{policy}");
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert!(
        policy.contains("img-src data:;"),
        "no remote images by default: {policy}"
    );
    assert!(!policy.contains("script-src"), "{policy}");
    assert!(!policy.contains("allow-scripts"), "{policy}");
    let remote = get(addr, "/api/v1/messages/000001/html?remote=1");
    let policy = remote.header("content-security-policy").expect("a policy");
    assert!(policy.contains("img-src data: http: https:"), "{policy}");
    assert!(policy.starts_with("sandbox;"), "still sandboxed: {policy}");

    let part = get(
        addr,
        &format!(
            "/api/v1/messages/000001/parts/{}",
            attachment["part"].as_str().unwrap()
        ),
    );
    assert_eq!(part.status, 200);
    assert_eq!(
        part.header("content-disposition"),
        Some("attachment; filename=\"script_evil.html\"; filename*=UTF-8''script_evil.html")
    );
    assert_eq!(part.header("content-type"), Some("text/html"));
    assert!(
        part.header("content-security-policy")
            .unwrap_or("")
            .starts_with("sandbox")
    );
    assert_eq!(part.header("x-content-type-options"), Some("nosniff"));

    let page = get(addr, "/");
    let policy = page
        .header("content-security-policy")
        .expect("the page's policy");
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    let text = page.text();
    assert!(
        !text.contains("http://") && !text.contains("https://"),
        "no remote assets"
    );
    assert!(get(addr, "/app.js").status == 200 && get(addr, "/app.css").status == 200);
}

/// Loopback unless told otherwise; Host, Origin and basic auth are checked.
#[test]
fn the_inbox_guards_itself() {
    let server = start(Config::default());
    let public = HttpConfig {
        listen: "0.0.0.0:0".parse().unwrap(),
        auth: None,
        insecure_public: false,
    };
    let refused = server
        .serve_http(public.clone())
        .expect_err("a public address alone is refused");
    assert!(
        refused
            .to_string()
            .contains("--http-auth USER:PASSWORD_FILE"),
        "{refused}"
    );

    let (served, http) = web(Config::default());
    let addr = http.addr();
    let rebound = request(
        addr,
        "GET",
        "/api/v1/messages",
        &[("Host", "attacker.example")],
        "",
    );
    assert_eq!(rebound.status, 403);
    assert!(
        rebound.json()["error"]
            .as_str()
            .unwrap()
            .contains("DNS rebinding")
    );
    assert_eq!(
        request(
            addr,
            "GET",
            "/api/v1/server",
            &[("Host", &format!("localhost:{}", addr.port()))],
            ""
        )
        .status,
        200
    );
    // Port 0 in the configuration: the answer names the port the kernel picked.
    assert_eq!(
        get(addr, "/api/v1/server").json()["smtp"],
        served.addr().to_string()
    );
    let cross = request(
        addr,
        "DELETE",
        "/api/v1/messages",
        &[("Origin", "http://attacker.example")],
        "",
    );
    assert_eq!(cross.status, 403);
    let form = request(
        addr,
        "POST",
        "/api/v1/faults",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        "fault=reject-data",
    );
    assert_eq!(form.status, 415);
    assert_eq!(
        get(addr, "/api/v1/faults").json()["faults"],
        serde_json::json!([])
    );
    let same = request(
        addr,
        "DELETE",
        "/api/v1/messages",
        &[("Origin", &format!("http://{addr}"))],
        "",
    );
    assert_eq!(same.status, 200);
    let bad_query = get(addr, "/api/v1/messages?limit=-1");
    assert_eq!(bad_query.status, 400);
    assert!(
        bad_query.json()["error"]
            .as_str()
            .unwrap()
            .contains("limit"),
        "{}",
        bad_query.text()
    );
    let bad_body = json_request(addr, "POST", "/api/v1/faults", "{\"fault\": 3");
    assert_eq!(bad_body.status, 400);
    assert!(bad_body.json()["error"].is_string());
    let missing = get(addr, "/api/v1/messages/999999");
    assert_eq!(missing.status, 404);
    assert!(missing.json()["error"].as_str().unwrap().contains("999999"));
    assert_eq!(get(addr, "/no/such/page").status, 404);

    // Basic auth, on an address the test may use (loopback, as CI allows no other).
    let guarded = server
        .serve_http(HttpConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            auth: Some(("admin".into(), "pa:ss".into())),
            insecure_public: false,
        })
        .expect("starts");
    let denied = get(guarded.addr(), "/api/v1/messages");
    assert_eq!(denied.status, 401);
    assert!(
        denied
            .header("www-authenticate")
            .unwrap_or("")
            .starts_with("Basic")
    );
    let wrong = request(
        guarded.addr(),
        "GET",
        "/",
        &[("Authorization", "Basic YWRtaW46bm9wZQ==")],
        "",
    );
    assert_eq!(wrong.status, 401);
    // admin:pa:ss
    let right = request(
        guarded.addr(),
        "GET",
        "/api/v1/messages",
        &[("Authorization", "Basic YWRtaW46cGE6c3M=")],
        "",
    );
    assert_eq!(right.status, 200);
}

/// A fault set through the API applies to the next session, and clearing it restores the
/// server; a contradicting fault is refused with a sentence and changes nothing.
#[test]
fn faults_change_at_run_time() {
    let (server, http) = web(Config::default());
    let addr = http.addr();
    assert!(
        send(
            &server,
            "a@example.com",
            "b@example.com",
            "Subject: before\n\nx"
        )
        .starts_with("250")
    );
    let set = json_request(
        addr,
        "POST",
        "/api/v1/faults",
        r#"{"fault":"reject-rcpt=b@example.com"}"#,
    );
    assert_eq!(
        set.json()["faults"],
        serde_json::json!(["reject-rcpt=b@example.com"])
    );
    assert_eq!(server.faults().reject_recipients, ["b@example.com"]);
    let mut client = Client::connect(server.addr());
    client.expect("EHLO client.example", "250");
    client.expect("MAIL FROM:<a@example.com>", "250");
    client.expect("RCPT TO:<b@example.com>", "550 5.1.1");
    client.expect("QUIT", "221");
    let contradiction = json_request(
        addr,
        "POST",
        "/api/v1/faults",
        r#"{"fault":"tempfail-rcpt=B@example.com"}"#,
    );
    assert_eq!(contradiction.status, 400);
    assert!(
        contradiction.json()["error"]
            .as_str()
            .unwrap()
            .contains("keep one of them")
    );
    let unknown = json_request(
        addr,
        "PUT",
        "/api/v1/faults",
        r#"{"faults":["reject-everything"]}"#,
    );
    assert_eq!(unknown.status, 400);
    assert_eq!(
        get(addr, "/api/v1/faults").json()["faults"],
        serde_json::json!(["reject-rcpt=b@example.com"])
    );
    let staged = json_request(
        addr,
        "PUT",
        "/api/v1/faults",
        r#"{"faults":["stall=rcpt:1500ms","no-starttls"]}"#,
    );
    assert_eq!(
        staged.json()["faults"],
        serde_json::json!(["no-starttls", "stall=rcpt:1500ms"])
    );
    assert_eq!(
        json_request(addr, "DELETE", "/api/v1/faults", "").json()["faults"],
        serde_json::json!([])
    );
    assert!(
        send(
            &server,
            "a@example.com",
            "b@example.com",
            "Subject: after\n\nx"
        )
        .starts_with("250")
    );
    server.wait_for_sessions(3, Duration::from_secs(10));
    let sessions = get(addr, "/api/v1/sessions").json();
    let failed = &sessions["sessions"][1];
    assert_eq!(
        failed["ok"], false,
        "the refused recipient marks the session failed: {sessions:#}"
    );
    assert_eq!(failed["messages"], serde_json::json!([]));
}

/// The wait returns a matching message as soon as it is stored, and 408 when none comes.
#[test]
fn the_wait_sees_a_new_message() {
    let (server, http) = web(Config::default());
    let addr = http.addr();
    assert!(
        send(
            &server,
            "a@example.com",
            "old@example.com",
            "Subject: old one\n\nx"
        )
        .starts_with("250")
    );
    let waiter = std::thread::spawn(move || {
        get(
            addr,
            "/api/v1/messages/wait?to=new%40example.com&subject=welcome&after=000001&timeout=20s",
        )
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        send(
            &server,
            "a@example.com",
            "other@example.com",
            "Subject: welcome\n\nx"
        )
        .starts_with("250")
    );
    assert!(
        send(
            &server,
            "a@example.com",
            "new@example.com",
            "Subject: Welcome aboard\n\nx"
        )
        .starts_with("250")
    );
    let found = waiter.join().unwrap();
    assert_eq!(found.status, 200, "{}", found.text());
    assert_eq!(found.json()["id"], "000003");
    assert_eq!(found.json()["subject"], "Welcome aboard");
    let none = get(addr, "/api/v1/messages/wait?subject=never&timeout=300ms");
    assert_eq!(none.status, 408);
    assert!(none.json()["error"].as_str().unwrap().contains("300ms"));
    // Already there: found at once.
    let there = get(addr, "/api/v1/messages/wait?q=OLD%20ONE&timeout=1s");
    assert_eq!(there.json()["id"], "000001");
    assert_eq!(get(addr, "/api/v1/messages/wait?timeout=11m").status, 400);
}

/// The live stream announces each stored message and finished session, and deletions.
#[test]
fn the_event_stream_is_live() {
    let (server, http) = web(Config::default());
    let mut tcp = TcpStream::connect(http.addr()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        tcp,
        "GET /api/v1/events HTTP/1.1\r\nHost: {}\r\n\r\n",
        http.addr()
    )
    .unwrap();
    let mut reader = BufReader::new(tcp);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    // The subscription is made when the stream is answered; the headers have arrived.
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if line.to_ascii_lowercase().starts_with("content-type") {
            assert!(line.contains("text/event-stream"), "{line}");
        }
    }
    assert!(
        send(
            &server,
            "a@example.com",
            "b@example.com",
            "Subject: live\n\nx"
        )
        .starts_with("250")
    );
    let mut seen = Vec::new();
    while seen.len() < 2 {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if let Some(data) = line.trim_end().strip_prefix("data: ") {
            let event: Value = serde_json::from_str(data).unwrap();
            seen.push(event);
        }
    }
    assert_eq!(seen[0]["subject"], "live");
    assert_eq!(seen[0]["id"], "000001");
    assert_eq!(seen[1]["messages"], serde_json::json!(["000001"]));
    let deleted = request(http.addr(), "DELETE", "/api/v1/messages/000001", &[], "");
    assert_eq!(deleted.status, 204);
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if let Some(data) = line.trim_end().strip_prefix("data: ") {
            assert_eq!(
                serde_json::from_str::<Value>(data).unwrap(),
                serde_json::json!({"ids": ["000001"]})
            );
            break;
        }
    }
    assert!(
        !server.store_dir().join("000001.eml").exists(),
        "the files are gone"
    );
    assert!(!server.store_dir().join("000001.json").exists());
    assert!(server.messages().is_empty());
}

/// A session's transcript comes with each line's explanation, its scorecard and a diff.
#[test]
fn sessions_are_explained_graded_and_compared() {
    // As `--http` runs it: with timings, which mark the pipelined lines.
    let (server, http) = web(Config {
        record_timings: true,
        ..Config::default()
    });
    let addr = http.addr();
    assert!(send(&server, "a@example.com", "b@example.com", "Subject: one\nDate: Mon, 23 Nov 2026 12:00:00 +0000\nFrom: a@example.com\nMessage-ID: <1@example.com>\n\nx").starts_with("250"));
    // The same, pipelined: MAIL and RCPT in one write.
    let mut client = Client::connect(server.addr());
    client.expect("EHLO client.example", "250");
    client.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n");
    assert!(client.reply().starts_with("250"));
    assert!(client.reply().starts_with("250"));
    client.expect("QUIT", "221");
    server.wait_for_sessions(2, Duration::from_secs(10));
    let session = get(addr, "/api/v1/sessions/000001").json();
    let lines = session["lines"].as_array().unwrap();
    let ehlo = lines
        .iter()
        .find(|l| l["text"] == "C: EHLO client.example")
        .expect("the EHLO line");
    assert_eq!(ehlo["kind"], "client");
    assert!(
        ehlo["explain"][0].as_str().unwrap().contains("RFC 5321"),
        "{ehlo}"
    );
    assert_eq!(
        lines.last().unwrap()["text"],
        "-- session ended: the client sent QUIT"
    );
    assert_eq!(session["helo"], "client.example");
    let card = get(addr, "/api/v1/sessions/000001/scorecard?profile=plain").json();
    assert_eq!(card["profile"], "plain");
    assert!(card["checks"].as_array().unwrap().len() > 5);
    assert_eq!(
        get(addr, "/api/v1/sessions/000001/scorecard?profile=nope").status,
        400
    );
    let diff = get(addr, "/api/v1/diff?a=000001&b=000002").json();
    assert_eq!(diff["identical"], false);
    let rows = diff["rows"].as_array().unwrap();
    assert!(
        rows.iter()
            .any(|r| r["kind"] == "equal" && r["left"] == "C: EHLO client.example")
    );
    assert!(
        rows.iter().any(|r| r["kind"] != "equal"
            && r["left"].as_str().is_some_and(|l| l.starts_with("C: DATA")))
    );
    // The RCPT that came in the same write as MAIL is marked, so the grouping shows.
    let rcpt = rows
        .iter()
        .position(|r| r["right"] == "C: RCPT TO:<b@example.com>")
        .expect("the right side's RCPT");
    assert!(
        rows[rcpt - 1]["kind"] != "equal"
            && rows[rcpt - 1]["right"]
                .as_str()
                .is_some_and(|l| l.starts_with("-- pipelined (RFC 2920)")),
        "{rows:?}"
    );
    let same = get(addr, "/api/v1/diff?a=000001&b=000001").json();
    assert_eq!(same["identical"], true);
    assert_eq!(get(addr, "/api/v1/diff?a=000001&b=404").status, 404);
}
