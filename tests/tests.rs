//! Herald's integration tests: one binary, topic modules, shared helpers
//! (workspaces, servers, fakes, the browser driver) under `support`.

mod support;

mod archive;
mod bounces;
mod browser;
mod check;
mod crash;
mod daemon;
mod digest;
mod dkim;
mod faults;
mod feeds;
mod fires;
mod hostile;
mod layers;
mod oauth;
mod postgres;
mod relays;
mod render;
mod scheduler;
mod schema;
mod secrets;
mod signup;
mod smtp;
mod social;
mod stops;
mod store_faults;
mod subscribers;
mod tls;
mod web;
