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

/// The longest run without whitespace that is encoded whole. BPE merges
/// cost the square of a piece's length, and the tokenizer's own split
/// leaves a run of letters as one piece, so longer runs are cut here.
const MAX_RUN: usize = 128;

/// The most bytes encoded at once (the pre-split's lookarounds stay cheap).
const MAX_CHUNK: usize = 4096;

/// Tokens of `text` under `o200k_base`, in time linear in its length: the
/// text is encoded in chunks cut at whitespace where it has some and every
/// [`MAX_RUN`] bytes where it has none, which changes counts only for such
/// runs (each cut may add a token; no real word is that long).
pub fn count(text: &str) -> u64 {
    chunks(text)
        .map(|c| bpe().encode_ordinary(c).len() as u64)
        .sum()
}

/// `text` in pieces of at most [`MAX_CHUNK`] bytes, none holding a run of
/// more than [`MAX_RUN`] non-whitespace bytes.
fn chunks(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut cut = rest.len();
        let mut run = 0;
        let mut last_space_end = None;
        for (i, c) in rest.char_indices() {
            let end = i + c.len_utf8();
            if end > MAX_CHUNK {
                cut = last_space_end.unwrap_or(i);
                break;
            }
            if c.is_whitespace() {
                run = 0;
                last_space_end = Some(end);
            } else {
                run += c.len_utf8();
                if run > MAX_RUN && i > 0 {
                    cut = i;
                    break;
                }
            }
        }
        let (head, tail) = rest.split_at(cut);
        rest = tail;
        Some(head)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_text_within_their_bounds() {
        for text in [
            "x".repeat(10_000),
            "word ".repeat(3_000),
            "é".repeat(5_000),
            format!("{} {}", "a".repeat(300), " ".repeat(9_000)),
        ] {
            let pieces: Vec<&str> = chunks(&text).collect();
            assert_eq!(pieces.concat(), text);
            for p in &pieces {
                assert!(p.len() <= MAX_CHUNK, "{}", p.len());
                let longest_run = p
                    .split(char::is_whitespace)
                    .map(str::len)
                    .max()
                    .unwrap_or(0);
                assert!(longest_run <= MAX_RUN + 4, "{longest_run}");
            }
        }
    }

    #[test]
    fn long_runs_without_spaces_count_quickly_and_close_to_whole() {
        // 150 k characters of one run: quadratic merging would take minutes.
        let n = count(&"ab".repeat(75_000));
        assert!(n > 0 && n <= 150_000, "{n}");
        let prose = "The gateway routes tokens through a cluster of nodes. ".repeat(50);
        assert_eq!(count(&prose), bpe().encode_ordinary(&prose).len() as u64);
    }

    #[test]
    fn counts_tokens() {
        assert_eq!(count(""), 0);
        assert_eq!(count("hello"), 1);
        let n = count("The gateway routes tokens through a cluster of nodes.");
        assert!((8..=14).contains(&n), "{n}");
    }
}
