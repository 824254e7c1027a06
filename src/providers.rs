//! Provider knowledge: presets of the OpenAI-compatible family, the OpenAI
//! wire format itself, and what the clouds need beside a wire format (AWS
//! signing and stream framing, Vertex AI's service-account tokens).
//!
//! Pure translation and parsing: nothing here opens a socket, serves HTTP or
//! knows about governance. The proxy drives these functions.

pub mod aws;
pub mod bound;
pub mod endpoints;
pub mod multipart;
pub mod openai;
pub mod presets;
pub mod sse;
pub mod tokens;
pub mod vertex;
