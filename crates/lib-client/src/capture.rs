//! Capturing lettre's `tracing` events and rebuilding the dialogue from them
//! (`../shared/reference/lettre-wire.md` §8).
//!
//! The subscriber is installed only for the duration of one send, on this thread, and only
//! stores events: nothing lettre logs (its DEBUG events carry the AUTH credentials in base64)
//! is ever printed from here.

use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use transcript::Transcript;

const CONNECTION_TARGET: &str = "lettre::transport::smtp::client::connection";

/// The captured event messages of lettre's connection module, in order.
#[derive(Clone, Default)]
pub(crate) struct Capture(Arc<Mutex<Vec<String>>>);

impl Capture {
    /// Runs `f` with this capture as the thread's only subscriber.
    pub(crate) fn during<T>(&self, f: impl FnOnce() -> T) -> T {
        let subscriber = tracing_subscriber::registry().with(self.clone());
        tracing::subscriber::with_default(subscriber, f)
    }

    /// Rebuilds the transcript: `Wrote: X` is what the client sent, and consecutive `<< X`
    /// events are one reply growing line by line, so only the new suffix is new.
    pub(crate) fn rebuild(&self, transcript: &mut Transcript, peer: &str, implicit_tls: bool) {
        let events = match self.0.lock() {
            Ok(events) => events.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        if events.is_empty() {
            return;
        }
        transcript.connected(peer);
        if implicit_tls {
            transcript.tls_established(None);
        }
        let mut reply_so_far: Option<String> = None;
        for event in &events {
            if let Some(wrote) = event.strip_prefix("Wrote: ") {
                reply_so_far = None;
                transcript.client(wrote.replace("<CRLF>", "\r\n").as_bytes());
            } else if let Some(buffer) = event.strip_prefix("<< ") {
                let new = match &reply_so_far {
                    Some(previous) if buffer.starts_with(previous.as_str()) => {
                        &buffer[previous.len()..]
                    }
                    _ => buffer,
                };
                transcript.server(new.replace("<CRLF>", "\r\n").as_bytes());
                reply_so_far = Some(buffer.to_owned());
            } else if event == "connection encrypted" {
                reply_so_far = None;
                transcript.tls_established(None);
            } else {
                reply_so_far = None;
            }
        }
        transcript.closed();
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != CONNECTION_TARGET {
            return;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        if let Ok(mut events) = self.0.lock() {
            events.push(message.0);
        }
    }
}

/// Collects an event's `message` field.
struct Message(String);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // lettre's events are format_args! messages, which arrive here.
        if field.name() == "message" {
            self.0.push_str(&format!("{value:?}"));
        }
    }
}
