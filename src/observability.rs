//! What the node tells operators: Prometheus metrics, the request log and
//! the MCP tool log.
//!
//! Both are fed from the request path without blocking it: metrics are atomic
//! counters, and log records go through a bounded channel to a writer task.
//! A log record is bounded field by field ([`clip`]) and the queue by bytes
//! as well as records ([`request_log::Queued`]), so no client can make the
//! node hold or write more than that for its logs.

pub mod audit;
pub mod metrics;
pub mod otel;
pub mod overview;
pub mod request_log;
pub mod spend;
pub mod tool_log;

/// `s` cut to at most `max` bytes (at a character boundary), marked with `…`
/// when cut.
pub fn clip(mut s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push('…');
    s
}

/// [`clip`] for an optional field.
pub fn clip_opt(s: Option<String>, max: usize) -> Option<String> {
    s.map(|s| clip(s, max))
}

#[cfg(test)]
mod tests {
    use super::clip;

    #[test]
    fn clipping_keeps_whole_characters_and_marks_the_cut() {
        assert_eq!(clip("short".into(), 10), "short");
        let cut = clip("ééééé".into(), 6);
        assert!(cut.len() <= 6 && cut.ends_with('…'), "{cut}");
        assert_eq!(clip("abcdefghij".into(), 6), "abc…");
    }
}
