//! Social posting: teasers of new articles to X, Mastodon, Bluesky and chat
//! webhooks, once per (article, account).

pub mod teaser;
