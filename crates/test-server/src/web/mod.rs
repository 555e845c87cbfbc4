//! The web inbox and REST API (`test-server --http`): axum on a current-thread tokio runtime
//! of its own thread, reading what the SMTP side already keeps (the store's messages, the
//! finished sessions, the faults) and told of changes through [`Event`]s, so the SMTP
//! threads never wait for it.
//!
//! Security: loopback by default, and then only requests that name a loopback host (a
//! DNS rebinding guard); another address needs basic auth or an explicit
//! `insecure_public`. Requests that change something are refused when a browser says they
//! come from a page of another site. The page's CSS and JS are embedded and the page runs under a
//! Content-Security-Policy that allows nothing else; a message's HTML is served under its
//! own policy (a sandbox without scripts) for an `<iframe sandbox>`.

mod api;
mod mail;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::server::{Server, Shared};
use crate::{Error, lab};

/// The address `--http` listens on when given without one (Mailpit's).
pub const DEFAULT_ADDR: &str = "127.0.0.1:8025";

/// How the web inbox is served.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// A user and password every request must give (HTTP basic auth, RFC 7617).
    pub auth: Option<(String, String)>,
    /// Serve a non-loopback address without `auth`: anyone who reaches it reads the mail.
    pub insecure_public: bool,
}

/// The running web inbox; dropping it stops it.
#[derive(Debug)]
pub struct Http {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Http {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The inbox's URL, such as `http://127.0.0.1:8025/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for Http {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Server {
    /// Serves the web inbox and the REST API of this server until the returned [`Http`] is
    /// dropped. A non-loopback address without `auth` or `insecure_public` is refused.
    pub fn serve_http(&self, config: HttpConfig) -> Result<Http, Error> {
        let public = !config.listen.ip().is_loopback();
        if public && config.auth.is_none() && !config.insecure_public {
            return Err(Error::Config(format!(
                "the web inbox on {} would show every message to anyone who can reach it; \
                 add --http-auth USER:PASSWORD_FILE, or --http-insecure-public if that is meant",
                config.listen
            )));
        }
        let listener = TcpListener::bind(config.listen)
            .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
            .map_err(|source| Error::Listen {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let app = App {
            shared: self.shared().clone(),
            cache: Arc::default(),
            auth: config.auth.map(Arc::new),
            loopback_hosts_only: !public,
        };
        let router = router(app);
        // Registered with the runtime here, so that a failure is the caller's error.
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = thread::Builder::new()
            .name("test-server-http".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    // The live event streams never end by themselves: stopping drops them
                    // with the runtime rather than waiting for them.
                    tokio::select! {
                        _ = axum::serve(listener, router) => {}
                        _ = stopped => {}
                    }
                });
            })?;
        Ok(Http {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct App {
    pub(crate) shared: Arc<Shared>,
    /// Each message's parsed summary, worked out once.
    pub(crate) cache: Arc<std::sync::Mutex<std::collections::HashMap<String, Arc<api::Summary>>>>,
    auth: Option<Arc<(String, String)>>,
    loopback_hosts_only: bool,
}

impl App {
    /// The lab profile a session is graded with by default: `submission` when the server
    /// has users (it asks for AUTH), `plain` otherwise.
    pub(crate) fn default_profile(&self) -> lab::Profile {
        match self.shared.config.users.is_empty() && self.shared.config.oauth2_tokens.is_empty() {
            true => lab::Profile::Plain,
            false => lab::Profile::Submission,
        }
    }
}

/// Every route: its path, the methods it answers (the OpenAPI file lists the same, a test
/// checks it) and its handlers.
pub(crate) fn routes() -> Vec<(&'static str, &'static [&'static str], MethodRouter<App>)> {
    vec![
        ("/", &["GET"], get(page)),
        ("/app.js", &["GET"], get(script)),
        ("/app.css", &["GET"], get(style)),
        ("/api/v1/openapi.json", &["GET"], get(openapi)),
        ("/api/v1/server", &["GET"], get(api::server)),
        (
            "/api/v1/messages",
            &["GET", "DELETE"],
            get(api::messages).delete(api::delete_all),
        ),
        ("/api/v1/messages/wait", &["GET"], get(api::wait)),
        (
            "/api/v1/messages/{id}",
            &["GET", "DELETE"],
            get(api::message).delete(api::delete_message),
        ),
        ("/api/v1/messages/{id}/raw", &["GET"], get(api::raw)),
        ("/api/v1/messages/{id}/html", &["GET"], get(api::html)),
        (
            "/api/v1/messages/{id}/parts/{part}",
            &["GET"],
            get(api::part),
        ),
        ("/api/v1/sessions", &["GET"], get(api::sessions)),
        ("/api/v1/sessions/{id}", &["GET"], get(api::session)),
        (
            "/api/v1/sessions/{id}/scorecard",
            &["GET"],
            get(api::scorecard),
        ),
        ("/api/v1/diff", &["GET"], get(api::diff)),
        (
            "/api/v1/faults",
            &["GET", "POST", "PUT", "DELETE"],
            get(api::faults)
                .post(api::add_fault)
                .put(api::set_faults)
                .delete(api::clear_faults),
        ),
        ("/api/v1/events", &["GET"], get(api::events)),
    ]
}

fn router(app: App) -> Router {
    let mut router = Router::new();
    for (path, _, methods) in routes() {
        router = router.route(path, methods);
    }
    router
        .fallback(|| async {
            api::failure(StatusCode::NOT_FOUND, "there is no such page or endpoint")
        })
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

/// The CSP of the page: its own script and style, our API, our frames, nothing else.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; frame-src 'self'; form-action 'none'; \
    base-uri 'none'; frame-ancestors 'none'";

async fn page() -> Response {
    let mut response = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        include_str!("ui/index.html"),
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_POLICY),
    );
    response
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("ui/app.js"),
    )
}

async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("ui/app.css"),
    )
}

/// The API's description (OpenAPI 3.1), as kept in the repository.
pub(crate) const OPENAPI: &str = include_str!("../../openapi.json");

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// Before every handler: the host, the credentials and the CSRF rule; after it, the
/// headers every response gets.
async fn guard(State(app): State<App>, request: Request, next: Next) -> Response {
    if let Some(refusal) = refuse(&app, request.method(), request.headers()) {
        return refusal;
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    // Only a message's HTML may be framed, and only by the page.
    headers
        .entry(header::X_FRAME_OPTIONS)
        .or_insert(HeaderValue::from_static("DENY"));
    response
}

/// Why a request is refused before it reaches its handler, if it is.
fn refuse(app: &App, method: &Method, headers: &HeaderMap) -> Option<Response> {
    let value = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if app.loopback_hosts_only {
        let host = value(header::HOST).unwrap_or("");
        if !is_loopback_host(host) {
            return Some(api::failure(
                StatusCode::FORBIDDEN,
                "this inbox answers only requests addressed to 127.0.0.1, [::1] or localhost \
                 (a guard against DNS rebinding); open it by one of those names",
            ));
        }
    }
    if let Some(auth) = &app.auth {
        let given = value(header::AUTHORIZATION)
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b64| BASE64.decode(b64.trim()).ok());
        let expected = format!("{}:{}", auth.0, auth.1);
        if !given.is_some_and(|given| same(&given, expected.as_bytes())) {
            let mut response = api::failure(
                StatusCode::UNAUTHORIZED,
                "this inbox needs the user and password given to --http-auth",
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"test-server\", charset=\"UTF-8\""),
            );
            return Some(response);
        }
    }
    // POST and PUT need a JSON body (axum's Json refuses anything else with 415), which a
    // cross-site form cannot send; DELETE and PUT from another site need a CORS preflight,
    // which is never granted. A browser names the page's site in Origin: another is refused.
    let changes = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if let (true, Some(origin)) = (changes, value(header::ORIGIN)) {
        let host = value(header::HOST).unwrap_or("");
        let same_origin = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|rest| rest.eq_ignore_ascii_case(host));
        if !same_origin {
            return Some(api::failure(
                StatusCode::FORBIDDEN,
                "a page of another site may not change this inbox",
            ));
        }
    }
    None
}

/// Whether a Host header names this machine by a loopback name: `localhost` (or a name under
/// it), `127.x.y.z` or `[::1]`, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    let name = name.to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Compares two byte strings in time that depends only on their lengths.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in [
            "127.0.0.1:8025",
            "127.0.0.1",
            "localhost:8025",
            "LOCALHOST",
            "inbox.localhost:1",
            "[::1]:8025",
            "[::1]",
            "127.1.2.3:80",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "",
            "evil.example:8025",
            "localhost.evil.example",
            "10.0.0.1:8025",
            "[2001:db8::1]:80",
            "127.0.0.1.evil.example",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn credentials_compare() {
        assert!(same(b"a:b", b"a:b"));
        assert!(!same(b"a:b", b"a:c"));
        assert!(!same(b"a:b", b"a:bc"));
    }

    /// The OpenAPI file lists exactly the routes and methods served.
    #[test]
    fn the_openapi_file_matches_the_routes() {
        let spec: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        let paths = spec["paths"].as_object().expect("paths");
        let mut documented: Vec<(String, String)> = Vec::new();
        for (path, item) in paths {
            for method in item.as_object().expect("path item").keys() {
                if ["get", "post", "put", "delete", "patch", "head"].contains(&method.as_str()) {
                    documented.push((path.clone(), method.to_ascii_uppercase()));
                }
            }
        }
        let mut served: Vec<(String, String)> = routes()
            .into_iter()
            .filter(|(path, _, _)| path.starts_with("/api/v1/"))
            .flat_map(|(path, methods, _)| {
                methods
                    .iter()
                    .map(move |method| (path.to_owned(), (*method).to_owned()))
            })
            .collect();
        documented.sort();
        served.sort();
        assert_eq!(documented, served);
    }
}
