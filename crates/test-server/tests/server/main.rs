//! Integration tests of the test server over real sockets, with a raw client written
//! here (no client crate), and with real clients no one here wrote (Python's smtplib,
//! curl).

#![allow(clippy::unwrap_used, missing_docs, unreachable_pub)]

mod auth;
mod bdat;
mod concurrency;
mod dialogue;
mod dsn;
mod explain;
mod faults;
mod limits;
mod real_clients;
mod sasl;
mod sessions;
mod storage;
mod support;
mod tls;
mod web;
