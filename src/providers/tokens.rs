//! Counting tokens where an upstream reports none (streams from providers
//! that ignore `stream_options.include_usage`).
//!
//! One tokenizer serves every provider: OpenAI's `o200k_base`. Other model
//! families tokenize differently, so counts for them are close estimates, not
//! their providers' own numbers; they are used only when no usage arrives.

use std::sync::OnceLock;

use tiktoken_rs::CoreBPE;

fn bpe() -> &'static CoreBPE {
    static BPE: OnceLock<CoreBPE> = OnceLock::new();
    BPE.get_or_init(|| tiktoken_rs::o200k_base().expect("the bundled o200k_base vocabulary loads"))
}

/// Tokens of `text` under `o200k_base`.
pub fn count(text: &str) -> u64 {
    if text.is_empty() {
        return 0;
    }
    bpe().encode_ordinary(text).len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_tokens() {
        assert_eq!(count(""), 0);
        assert_eq!(count("hello"), 1);
        let n = count("The gateway routes tokens through a cluster of nodes.");
        assert!((8..=14).contains(&n), "{n}");
    }
}
