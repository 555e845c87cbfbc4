//! The REST API under `/api/v1/` (described by `crates/test-server/openapi.json`): messages,
//! their parts and source, sessions with their explained transcripts, scorecards and diffs,
//! the faults, a wait for a message, and the live event stream.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant, UNIX_EPOCH};

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use mail_parser::MimeHeaders as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use transcript::RenderOptions;

use super::{App, mail};
use crate::server::Event;
use crate::store::{StoredEnvelope, StoredMessage};
use crate::{Faults, Session, Timing, lab, parse_duration};

/// axum's `Query`, a query string it cannot read answered with our `{"error"}` JSON.
pub(crate) struct Params<T>(T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Params(value)),
            Err(rejection) => Err(failure(
                StatusCode::BAD_REQUEST,
                &format!(
                    "{}; /api/v1/openapi.json lists the parameters",
                    rejection.body_text()
                ),
            )),
        }
    }
}

/// axum's `Json` body, refused with our `{"error"}` JSON.
pub(crate) struct Body<T>(T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = Response;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Response> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Body(value)),
            // 415 for a body that is not JSON; anything else the body says is a bad request.
            Err(rejection) => Err(failure(
                match rejection.status() {
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    _ => StatusCode::BAD_REQUEST,
                },
                &rejection.body_text(),
            )),
        }
    }
}

/// An error answer: `{"error": sentence}` with its status.
pub(crate) fn failure(status: StatusCode, sentence: &str) -> Response {
    (status, Json(json!({ "error": sentence }))).into_response()
}

fn not_found(what: &str, id: &str) -> Response {
    failure(
        StatusCode::NOT_FOUND,
        &format!("there is no {what} {id:?}; list them with GET /api/v1/{what}s"),
    )
}

fn unix_ms(time: std::time::SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A message as the inbox lists it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Summary {
    id: String,
    from: String,
    to: Vec<String>,
    cc: Vec<String>,
    subject: String,
    date: Option<String>,
    received_unix_ms: u64,
    size: usize,
    attachments: usize,
    tls: bool,
    auth_user: Option<String>,
    envelope: StoredEnvelope,
    /// Filled in when answering: the session is known only once it has finished.
    session: Option<String>,
}

impl Summary {
    fn of(message: &StoredMessage) -> Summary {
        let parsed = mail::parse(&message.data);
        let header = |name: &str| {
            let value = parsed.as_ref().and_then(|m| m.header(name));
            mail::addresses(value.and_then(|v| v.as_address()))
        };
        Summary {
            id: message.id.clone(),
            from: header("From").join(", "),
            to: header("To"),
            cc: header("Cc"),
            subject: parsed
                .as_ref()
                .and_then(|m| m.subject())
                .unwrap_or_default()
                .to_owned(),
            date: parsed
                .as_ref()
                .and_then(|m| m.date())
                .map(|d| d.to_rfc822()),
            received_unix_ms: unix_ms(message.received),
            size: message.data.len(),
            attachments: parsed.as_ref().map_or(0, |m| m.attachment_count()),
            tls: message.envelope.tls,
            auth_user: message.envelope.auth_user.clone(),
            envelope: message.envelope.clone(),
            session: None,
        }
    }

    /// Whether it matches a search: every given field, case-insensitively.
    fn matches(&self, search: &Search) -> bool {
        let has =
            |haystack: &str, needle: &str| haystack.to_lowercase().contains(&needle.to_lowercase());
        let envelope = &self.envelope;
        let senders = || std::iter::once(&self.from).chain([&envelope.from]);
        let recipients = || self.to.iter().chain(&self.cc).chain(&envelope.recipients);
        let field = |value: &Option<String>, test: &dyn Fn(&str) -> bool| {
            value.as_deref().is_none_or(|v| v.is_empty() || test(v))
        };
        field(&search.q, &|q| {
            has(&self.subject, q) || senders().chain(recipients()).any(|a| has(a, q))
        }) && field(&search.from, &|q| senders().any(|a| has(a, q)))
            && field(&search.to, &|q| recipients().any(|a| has(a, q)))
            && field(&search.subject, &|q| has(&self.subject, q))
    }
}

/// The search of `GET /messages` and `GET /messages/wait`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Search {
    q: Option<String>,
    from: Option<String>,
    to: Option<String>,
    subject: Option<String>,
}

impl App {
    fn summary(&self, message: &StoredMessage) -> Arc<Summary> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache
            .entry(message.id.clone())
            .or_insert_with(|| Arc::new(Summary::of(message)))
            .clone()
    }

    /// Which session stored each message, of those finished.
    fn session_of(&self) -> HashMap<String, String> {
        let sessions = self.shared.sessions();
        let mut of = HashMap::new();
        for session in sessions.iter() {
            for id in &session.message_ids {
                of.insert(id.clone(), session.id.clone());
            }
        }
        of
    }

    fn with_session(&self, summary: &Summary, of: &HashMap<String, String>) -> Summary {
        Summary {
            session: of.get(&summary.id).cloned(),
            ..summary.clone()
        }
    }

    fn forget(&self, ids: Option<&[String]>) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        match ids {
            Some(ids) => ids.iter().for_each(|id| {
                cache.remove(id);
            }),
            None => cache.clear(),
        }
    }
}

pub(crate) async fn server(State(app): State<App>) -> Json<Value> {
    let shared = &app.shared;
    let config = &shared.config;
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "hostname": config.hostname,
        "smtp": config.listen.to_string(),
        "smtp_tls": config.tls_listen.map(|a| a.to_string()),
        "store": shared.store.dir().display().to_string(),
        "messages": shared.store.list().len(),
        "sessions": shared.sessions().len(),
    }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct Listing {
    #[serde(flatten)]
    search: Search,
    limit: Option<usize>,
    offset: Option<usize>,
}

pub(crate) async fn messages(
    State(app): State<App>,
    Params(listing): Params<Listing>,
) -> Json<Value> {
    let of = app.session_of();
    let matching: Vec<Arc<Summary>> = app
        .shared
        .store
        .list()
        .iter()
        .rev()
        .map(|message| app.summary(message))
        .filter(|summary| summary.matches(&listing.search))
        .collect();
    let page: Vec<Summary> = matching
        .iter()
        .skip(listing.offset.unwrap_or(0))
        .take(listing.limit.unwrap_or(50))
        .map(|summary| app.with_session(summary, &of))
        .collect();
    Json(json!({ "total": matching.len(), "messages": page }))
}

pub(crate) async fn delete_all(State(app): State<App>) -> Response {
    deleted(&app, None)
}

pub(crate) async fn delete_message(State(app): State<App>, Path(id): Path<String>) -> Response {
    if app.shared.store.get(&id).is_none() {
        return not_found("message", &id);
    }
    match deleted(&app, Some(std::slice::from_ref(&id))) {
        response if response.status().is_success() => StatusCode::NO_CONTENT.into_response(),
        response => response,
    }
}

fn deleted(app: &App, ids: Option<&[String]>) -> Response {
    match app.shared.store.delete(ids) {
        Ok(gone) => {
            app.forget(Some(&gone));
            app.shared.notify(Event::Deleted(ids.map(|_| gone.clone())));
            Json(json!({ "deleted": gone.len() })).into_response()
        }
        Err(e) => failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!(
                "the store could not delete every file ({e}); check the directory's permissions"
            ),
        ),
    }
}

pub(crate) async fn message(State(app): State<App>, Path(id): Path<String>) -> Response {
    let Some(message) = app.shared.store.get(&id) else {
        return not_found("message", &id);
    };
    let summary = app.with_session(&app.summary(&message), &app.session_of());
    let mut body = serde_json::to_value(summary).unwrap_or_default();
    let parsed = mail::parse(&message.data);
    let details = match &parsed {
        Some(parsed) => json!({
            "headers": mail::headers(parsed),
            "text": mail::text(parsed),
            "html": mail::html_part(parsed).is_some(),
            "parts": mail::tree(parsed, 0),
            "attachments": mail::attachments(parsed),
        }),
        None => json!({
            "headers": [], "text": null, "html": false, "parts": null, "attachments": [],
        }),
    };
    if let (Some(body), Value::Object(details)) = (body.as_object_mut(), details) {
        body.extend(details);
        body.insert(
            "transcript".to_owned(),
            Value::from(message.transcript.clone()),
        );
    }
    Json(body).into_response()
}

pub(crate) async fn raw(State(app): State<App>, Path(id): Path<String>) -> Response {
    match app.shared.store.get(&id) {
        Some(message) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            message.data.clone(),
        )
            .into_response(),
        None => not_found("message", &id),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct HtmlOptions {
    remote: Option<String>,
}

pub(crate) async fn html(
    State(app): State<App>,
    Path(id): Path<String>,
    Params(options): Params<HtmlOptions>,
) -> Response {
    let Some(message) = app.shared.store.get(&id) else {
        return not_found("message", &id);
    };
    let Some(parsed) = mail::parse(&message.data) else {
        return not_found("HTML part of message", &id);
    };
    let Some(html) = mail::html_part(&parsed) else {
        return not_found("HTML part of message", &id);
    };
    let html = mail::inline_images(&parsed, html);
    let remote = matches!(options.remote.as_deref(), Some("1" | "true" | "yes"));
    // A sandbox without scripts or forms even if opened on its own; images from the message
    // itself always, from elsewhere only when asked.
    let images = if remote {
        "data: http: https:"
    } else {
        "data:"
    };
    let policy = format!(
        "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src {images}; \
         font-src data:; frame-ancestors 'self'"
    );
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    let headers = response.headers_mut();
    if let Ok(policy) = HeaderValue::from_str(&policy) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    headers.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    response
}

pub(crate) async fn part(
    State(app): State<App>,
    Path((id, number)): Path<(String, String)>,
) -> Response {
    let Some(message) = app.shared.store.get(&id) else {
        return not_found("message", &id);
    };
    let parsed = mail::parse(&message.data);
    let found = number.parse::<u32>().ok().and_then(|n| {
        parsed
            .as_ref()
            .and_then(|p| p.part(n))
            .map(|part| (n, part))
    });
    let Some((n, part)) = found else {
        return not_found(&format!("part of message {id}, numbered"), &number);
    };
    let name = part.attachment_name().map_or_else(
        || format!("part-{n}.bin"),
        |given| mail::safe_name(given, n),
    );
    let encoded: String = name
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let disposition = format!(
        "attachment; filename=\"{}\"; filename*=UTF-8''{encoded}",
        mail::ascii_name(&name)
    );
    let mut response = mail::contents(part).into_owned().into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, mail::media_type(part)),
        (header::CONTENT_DISPOSITION, disposition),
        (
            header::CONTENT_SECURITY_POLICY,
            "sandbox; default-src 'none'".to_owned(),
        ),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

#[derive(Debug, Deserialize)]
pub(crate) struct Wait {
    #[serde(flatten)]
    search: Search,
    after: Option<String>,
    timeout: Option<String>,
}

/// The longest a wait may be asked to last.
const LONGEST_WAIT: Duration = Duration::from_secs(600);

pub(crate) async fn wait(State(app): State<App>, Params(wait): Params<Wait>) -> Response {
    let timeout = match wait.timeout.as_deref().map(parse_duration) {
        None => Duration::from_secs(30),
        Some(Ok(timeout)) if timeout <= LONGEST_WAIT => timeout,
        Some(Ok(_)) => {
            return failure(
                StatusCode::BAD_REQUEST,
                "a wait may last at most 10m; give a shorter timeout",
            );
        }
        Some(Err(e)) => return failure(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    // Ids are numbers (zero-padded to six digits, longer after 999999).
    let number = |id: &str| id.parse::<u64>().unwrap_or(0);
    let after = wait.after.as_deref().map_or(0, number);
    let deadline = Instant::now() + timeout;
    // Subscribed before looking, so that a message stored in between is not missed.
    let mut events = app.shared.subscribe();
    loop {
        let found = app
            .shared
            .store
            .list()
            .iter()
            .rev()
            .filter(|message| number(&message.id) > after)
            .map(|message| app.summary(message))
            .find(|summary| summary.matches(&wait.search));
        if let Some(summary) = found {
            return Json(app.with_session(&summary, &app.session_of())).into_response();
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, next_message(&mut events)).await {
            Ok(true) => continue,
            Ok(false) | Err(_) => {
                return failure(
                    StatusCode::REQUEST_TIMEOUT,
                    &format!(
                        "no matching message arrived within {}; check the search, or wait longer \
                         with timeout=",
                        humanize(timeout)
                    ),
                );
            }
        }
    }
}

fn humanize(duration: Duration) -> String {
    match duration.as_millis() {
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => format!("{ms}ms"),
    }
}

/// Waits for a stored message (or missed events, which may hide one); false if the server
/// has gone.
async fn next_message(events: &mut tokio::sync::broadcast::Receiver<Event>) -> bool {
    loop {
        match events.recv().await {
            Ok(Event::Message(_)) | Err(RecvError::Lagged(_)) => return true,
            Ok(_) => {}
            Err(RecvError::Closed) => return false,
        }
    }
}

/// A session as the list shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SessionSummary {
    id: String,
    peer: String,
    started_unix_ms: u64,
    duration_ms: u64,
    tls: bool,
    auth_user: Option<String>,
    helo: Option<String>,
    reason: String,
    reason_text: String,
    messages: Vec<String>,
    /// Ended with QUIT and no reply refused anything.
    ok: bool,
    failed_auth: bool,
    lines: usize,
}

/// A session's transcript as the web shows and diffs it. The server records each command
/// when it handles it, so a pipelined dialogue reads like one in turn; with
/// `record_timings` (on with `--http`) a `-- pipelined` note marks each client line that
/// arrived before the reply to the line before it, so the grouping shows (RFC 2920).
fn session_text(session: &Session) -> String {
    let mut shown = transcript::Transcript::new();
    let mut from = 0;
    for &(at, timing) in &session.timings {
        if timing == Timing::BeforeReply && at >= from {
            shown.extend(session.transcript.slice(from..at));
            shown.note(PIPELINED);
            from = at;
        }
    }
    shown.extend(session.transcript.slice(from..session.transcript.len()));
    let mut text = shown.render_text(RenderOptions::default());
    text.push_str(&format!("-- session ended: {}\n", session.reason));
    text
}

/// The note before a client line sent without waiting for the reply to the line before.
const PIPELINED: &str =
    "pipelined (RFC 2920): the next line arrived before the server wrote the reply above it";

fn session_summary(app: &App, session: &Session, text: &str) -> SessionSummary {
    let mut helo = None;
    let mut auth_attempted = false;
    let mut refused = false;
    let mut auth_refused = false;
    let mut last_command = "";
    for line in text.lines() {
        if let Some(command) = line.strip_prefix("C: ") {
            let verb = command.split(' ').next().unwrap_or("").to_ascii_uppercase();
            if helo.is_none() && (verb == "EHLO" || verb == "HELO") {
                helo = command.split(' ').nth(1).map(str::to_owned);
            }
            if verb == "AUTH" {
                auth_attempted = true;
            }
            last_command = command;
        } else if let Some(reply) = line.strip_prefix("S: ") {
            let code = reply.get(..3).unwrap_or("");
            if code.starts_with('4') || code.starts_with('5') {
                refused = true;
                let verb = last_command.split(' ').next().unwrap_or("");
                if auth_attempted
                    && (matches!(code, "535" | "534" | "538" | "454")
                        || verb.eq_ignore_ascii_case("AUTH"))
                {
                    auth_refused = true;
                }
            }
        }
    }
    let auth_user = session
        .message_ids
        .iter()
        .find_map(|id| app.shared.store.get(id))
        .and_then(|message| message.envelope.auth_user.clone());
    SessionSummary {
        id: session.id.clone(),
        peer: session.peer.clone(),
        started_unix_ms: unix_ms(session.started),
        duration_ms: u64::try_from(session.duration.as_millis()).unwrap_or(u64::MAX),
        tls: session.tls,
        auth_user,
        helo,
        reason: session.reason.kind().to_owned(),
        reason_text: session.reason.to_string(),
        messages: session.message_ids.clone(),
        ok: session.reason.kind() == "quit" && !refused,
        failed_auth: auth_refused,
        lines: text.lines().count(),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct SessionListing {
    limit: Option<usize>,
    offset: Option<usize>,
}

pub(crate) async fn sessions(
    State(app): State<App>,
    Params(listing): Params<SessionListing>,
) -> Json<Value> {
    // Only the page is copied out of the lock the SMTP side finishes sessions under.
    let (total, chosen): (usize, Vec<Session>) = {
        let sessions = app.shared.sessions();
        let chosen = sessions
            .iter()
            .rev()
            .skip(listing.offset.unwrap_or(0))
            .take(listing.limit.unwrap_or(100))
            .cloned()
            .collect();
        (sessions.len(), chosen)
    };
    let page: Vec<SessionSummary> = chosen
        .iter()
        .map(|session| session_summary(&app, session, &session_text(session)))
        .collect();
    Json(json!({ "total": total, "sessions": page }))
}

fn finished(app: &App, id: &str) -> Option<Session> {
    app.shared
        .sessions()
        .iter()
        .find(|session| session.id == id)
        .cloned()
}

pub(crate) async fn session(State(app): State<App>, Path(id): Path<String>) -> Response {
    let Some(session) = finished(&app, &id) else {
        return not_found("session", &id);
    };
    let text = session_text(&session);
    let notes = transcript::explain::notes_per_line(&text);
    let lines: Vec<Value> = text
        .lines()
        .zip(notes)
        .map(|(line, notes)| {
            let kind = match line.get(..3) {
                Some("C: ") => "client",
                Some("S: ") => "server",
                _ if line == "C:" => "client",
                _ if line.starts_with("-- TLS") || line.starts_with("-- connected") => "event",
                _ => "note",
            };
            let explain: Vec<String> = notes.iter().map(|note| note.line()).collect();
            json!({ "kind": kind, "text": line, "explain": explain })
        })
        .collect();
    let mut body = serde_json::to_value(session_summary(&app, &session, &text)).unwrap_or_default();
    if let Some(body) = body.as_object_mut() {
        body.insert("lines".to_owned(), Value::from(lines));
        body.insert("transcript".to_owned(), Value::from(text));
    }
    Json(body).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct ScorecardOptions {
    profile: Option<String>,
}

pub(crate) async fn scorecard(
    State(app): State<App>,
    Path(id): Path<String>,
    Params(options): Params<ScorecardOptions>,
) -> Response {
    let profile = match options.profile.as_deref() {
        None | Some("") => app.default_profile(),
        Some(name) => match <lab::Profile as clap::ValueEnum>::from_str(name, true) {
            Ok(profile) => profile,
            Err(_) => {
                return failure(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "unknown lab profile {name:?}; use plain, submission, implicit, gmail or strict"
                    ),
                );
            }
        },
    };
    match finished(&app, &id) {
        Some(session) => Json(lab::grade(profile, &[session])).into_response(),
        None => not_found("session", &id),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct DiffOptions {
    a: String,
    b: String,
}

pub(crate) async fn diff(State(app): State<App>, Params(options): Params<DiffOptions>) -> Response {
    let (a, b) = match (finished(&app, &options.a), finished(&app, &options.b)) {
        (Some(a), Some(b)) => (a, b),
        (None, _) => return not_found("session", &options.a),
        (_, None) => return not_found("session", &options.b),
    };
    let (left, right) = (session_text(&a), session_text(&b));
    let rows = side_by_side(&left, &right);
    let changed = rows.iter().filter(|row| row.kind != "equal").count();
    Json(json!({
        "a": session_summary(&app, &a, &left),
        "b": session_summary(&app, &b, &right),
        "identical": changed == 0,
        "changed": changed,
        "rows": rows,
    }))
    .into_response()
}

/// One row of a side-by-side diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Row {
    kind: &'static str,
    left: Option<String>,
    right: Option<String>,
}

/// The two texts line by line, changed lines side by side (similar's diff).
pub(crate) fn side_by_side(left: &str, right: &str) -> Vec<Row> {
    use similar::DiffTag;
    let (old, new): (Vec<&str>, Vec<&str>) = (left.lines().collect(), right.lines().collect());
    let diff = similar::TextDiff::from_slices(&old, &new);
    let mut rows = Vec::new();
    for op in diff.ops() {
        let (olds, news) = (&old[op.old_range()], &new[op.new_range()]);
        let kind = match op.tag() {
            DiffTag::Equal => "equal",
            DiffTag::Delete => "delete",
            DiffTag::Insert => "insert",
            DiffTag::Replace => "replace",
        };
        for i in 0..olds.len().max(news.len()) {
            let (l, r) = (olds.get(i), news.get(i));
            let kind = match (kind, l, r) {
                ("replace", Some(_), None) => "delete",
                ("replace", None, Some(_)) => "insert",
                (kind, _, _) => kind,
            };
            rows.push(Row {
                kind,
                left: l.map(|s| (*s).to_owned()),
                right: r.map(|s| (*s).to_owned()),
            });
        }
    }
    rows
}

fn fault_list(app: &App) -> Value {
    let available: Vec<Value> = Faults::kinds()
        .map(|kind| {
            json!({ "name": kind.name, "syntax": kind.syntax, "description": kind.description })
        })
        .collect();
    json!({ "faults": app.shared.runtime().faults.specs(), "available": available })
}

pub(crate) async fn faults(State(app): State<App>) -> Json<Value> {
    Json(fault_list(&app))
}

#[derive(Debug, Deserialize)]
pub(crate) struct OneFault {
    fault: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct FaultSet {
    faults: Vec<String>,
}

fn apply(app: &App, faults: Result<Faults, crate::Error>) -> Response {
    match faults.and_then(|faults| app.shared.set_faults(faults)) {
        Ok(()) => Json(fault_list(app)).into_response(),
        Err(e) => failure(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

pub(crate) async fn add_fault(State(app): State<App>, Body(one): Body<OneFault>) -> Response {
    let mut faults = app.shared.runtime().faults.clone();
    let added = faults.add(&one.fault).map(|()| faults);
    apply(&app, added)
}

pub(crate) async fn set_faults(State(app): State<App>, Body(set): Body<FaultSet>) -> Response {
    let mut faults = Faults::default();
    let built = set
        .faults
        .iter()
        .try_for_each(|spec| faults.add(spec))
        .map(|()| faults);
    apply(&app, built)
}

pub(crate) async fn clear_faults(State(app): State<App>) -> Response {
    apply(&app, Ok(Faults::default()))
}

/// The live stream: one SSE event per change, as the list endpoints would show it.
pub(crate) async fn events(
    State(app): State<App>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let receiver = app.shared.subscribe();
    let stream = futures_util::stream::unfold((app, receiver), |(app, mut receiver)| async move {
        loop {
            let event = match receiver.recv().await {
                Ok(event) => event_for(&app, &event),
                // Fell behind: the page reloads its lists.
                Err(RecvError::Lagged(_)) => Some(SseEvent::default().event("resync").data("{}")),
                Err(RecvError::Closed) => return None,
            };
            if let Some(event) = event {
                return Some((Ok(event), (app, receiver)));
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

fn event_for(app: &App, event: &Event) -> Option<SseEvent> {
    let (name, data) = match event {
        Event::Message(id) => {
            let message = app.shared.store.get(id)?;
            let summary = app.summary(&message);
            ("message", serde_json::to_string(summary.as_ref()).ok()?)
        }
        Event::Session(id) => {
            let session = finished(app, id)?;
            let summary = session_summary(app, &session, &session_text(&session));
            ("session", serde_json::to_string(&summary).ok()?)
        }
        Event::Deleted(Some(ids)) => ("deleted", json!({ "ids": ids }).to_string()),
        Event::Deleted(None) => ("deleted", json!({ "all": true }).to_string()),
        Event::Faults => ("faults", fault_list(app).to_string()),
    };
    Some(SseEvent::default().event(name).data(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_pairs_changed_lines() {
        let rows = side_by_side("a\nb\nc\nd\n", "a\nB\nc\nd\ne\n");
        let kinds: Vec<&str> = rows.iter().map(|row| row.kind).collect();
        assert_eq!(kinds, ["equal", "replace", "equal", "equal", "insert"]);
        assert_eq!(rows[1].left.as_deref(), Some("b"));
        assert_eq!(rows[1].right.as_deref(), Some("B"));
        assert_eq!(rows[4].left, None);
        let uneven = side_by_side("x\ny\nz\n", "w\n");
        let kinds: Vec<&str> = uneven.iter().map(|row| row.kind).collect();
        assert_eq!(kinds, ["replace", "delete", "delete"]);
    }
}
