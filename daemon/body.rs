//! The body type of every HTTP answer fluxd gives (the listener's own pages, the console's,
//! and the console's event streams), shared by `web` and `console`.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};

/// A boxed body: sent at once ([`full`]) or streamed.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// A body of `bytes`, sent at once.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}
