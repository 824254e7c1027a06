//! Provider knowledge: presets of the OpenAI-compatible family and the OpenAI
//! wire format itself.
//!
//! Pure translation and parsing: nothing here opens a socket, serves HTTP or
//! knows about governance. The proxy drives these functions.

pub mod aws;
pub mod bound;
pub mod openai;
pub mod presets;
pub mod sse;
pub mod tokens;
