//! `multipart/form-data` bodies (`/v1/audio/transcriptions`): read whole
//! into their parts, bounded, and written back with one field changed, so
//! the model a request is authorised and priced for is the one the upstream
//! reads.
//!
//! Parsing is `multer`'s; this module bounds it (parts, field sizes) and
//! keeps each part's name, file name, content type and bytes.

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Map, Value};

/// The most parts a form may have.
pub const MAX_PARTS: usize = 64;

/// The longest a text field (not a file) may be.
pub const MAX_TEXT_FIELD: u64 = 64 * 1024;

/// One part of a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub data: Bytes,
}

/// A form read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    boundary: String,
    pub parts: Vec<Part>,
}

/// Why a body is not a form the gateway takes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

impl Form {
    /// Reads `body`, sent with `content_type`.
    pub async fn read(content_type: &str, body: Bytes) -> Result<Form, Malformed> {
        let boundary = multer::parse_boundary(content_type).map_err(|e| {
            Malformed(format!(
                "the body must be multipart/form-data with a boundary: {e}"
            ))
        })?;
        let limit = body.len() as u64;
        let constraints = multer::Constraints::new().size_limit(
            multer::SizeLimit::new()
                .whole_stream(limit)
                .per_field(limit),
        );
        let once = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
        let mut form = multer::Multipart::with_constraints(once, boundary.clone(), constraints);
        let mut parts = Vec::new();
        let bad = |e: multer::Error| Malformed(format!("invalid multipart body: {e}"));
        while let Some(field) = form.next_field().await.map_err(bad)? {
            if parts.len() == MAX_PARTS {
                return Err(Malformed(format!(
                    "a form may have at most {MAX_PARTS} parts"
                )));
            }
            let name = field
                .name()
                .ok_or_else(|| Malformed("a form part has no name".into()))?
                .to_string();
            let file_name = field.file_name().map(str::to_string);
            let content_type = field.content_type().map(|m| m.to_string());
            let data = field.bytes().await.map_err(bad)?;
            if file_name.is_none() && data.len() as u64 > MAX_TEXT_FIELD {
                return Err(Malformed(format!(
                    "form field '{name}' is longer than {MAX_TEXT_FIELD} bytes"
                )));
            }
            parts.push(Part {
                name,
                file_name,
                content_type,
                data,
            });
        }
        Ok(Form { boundary, parts })
    }

    /// The first part named `name`.
    pub fn get(&self, name: &str) -> Option<&Part> {
        self.parts.iter().find(|p| p.name == name)
    }

    /// A text field, as UTF-8.
    pub fn text(&self, name: &str) -> Result<Option<&str>, Malformed> {
        match self.get(name) {
            None => Ok(None),
            Some(p) => std::str::from_utf8(&p.data)
                .map(Some)
                .map_err(|_| Malformed(format!("form field '{name}' is not UTF-8 text"))),
        }
    }

    /// The text fields as a JSON object (the file parts as `true`), which
    /// the pipeline reads like a JSON body: `model`, `stream`, `prompt`.
    /// `stream` is a boolean when it spells one.
    pub fn view(&self) -> Result<Bytes, Malformed> {
        let mut o = Map::new();
        for p in &self.parts {
            if o.contains_key(&p.name) {
                continue;
            }
            let v = if p.file_name.is_some() {
                Value::Bool(true)
            } else {
                let text = self.text(&p.name)?.unwrap_or_default();
                match (p.name.as_str(), text) {
                    ("stream", "true") => Value::Bool(true),
                    ("stream", "false") => Value::Bool(false),
                    _ => Value::String(text.to_string()),
                }
            };
            o.insert(p.name.clone(), v);
        }
        Ok(Bytes::from(Value::Object(o).to_string()))
    }

    /// The `content-type` the form is written with.
    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// The form written out, with every part named `name` holding `value`
    /// instead (and one added when there is none).
    pub fn encode_with(&self, name: &str, value: &str) -> Bytes {
        let size: usize = self.parts.iter().map(|p| p.data.len() + 160).sum();
        let mut out = BytesMut::with_capacity(size + value.len() + 160);
        let mut replaced = false;
        for p in &self.parts {
            if p.name == name {
                replaced = true;
                self.write_part(&mut out, name, None, None, value.as_bytes());
            } else {
                self.write_part(
                    &mut out,
                    &p.name,
                    p.file_name.as_deref(),
                    p.content_type.as_deref(),
                    &p.data,
                );
            }
        }
        if !replaced {
            self.write_part(&mut out, name, None, None, value.as_bytes());
        }
        out.put_slice(b"--");
        out.put_slice(self.boundary.as_bytes());
        out.put_slice(b"--\r\n");
        out.freeze()
    }

    fn write_part(
        &self,
        out: &mut BytesMut,
        name: &str,
        file_name: Option<&str>,
        content_type: Option<&str>,
        data: &[u8],
    ) {
        out.put_slice(b"--");
        out.put_slice(self.boundary.as_bytes());
        out.put_slice(b"\r\nContent-Disposition: form-data; name=\"");
        out.put_slice(quoted(name).as_bytes());
        out.put_slice(b"\"");
        if let Some(f) = file_name {
            out.put_slice(b"; filename=\"");
            out.put_slice(quoted(f).as_bytes());
            out.put_slice(b"\"");
        }
        out.put_slice(b"\r\n");
        if let Some(ct) = content_type {
            out.put_slice(b"Content-Type: ");
            out.put_slice(ct.replace(['\r', '\n'], "").as_bytes());
            out.put_slice(b"\r\n");
        }
        out.put_slice(b"\r\n");
        out.put_slice(data);
        out.put_slice(b"\r\n");
    }
}

/// `s` safe inside a quoted header parameter: `"`, CR and LF
/// percent-encoded as browsers write them.
fn quoted(s: &str) -> String {
    s.replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// The most seconds of audio `file` can hold, for the reservation of a
/// transcription: a WAV file's exactly (its data length over its byte
/// rate); any other file's at 6 kbit/s, the lowest bitrate of the
/// compressed formats transcription APIs take (Opus; MP3's floor is 8).
pub fn audio_seconds_bound(file: &[u8]) -> u64 {
    wav_seconds(file).unwrap_or_else(|| (file.len() as u64).div_ceil(FLOOR_BYTES_PER_SECOND))
}

/// 6 kbit/s.
pub const FLOOR_BYTES_PER_SECOND: u64 = 750;

/// A RIFF/WAVE file's duration in whole seconds, rounded up: its `data`
/// chunk's length (no more than the file holds) over the `fmt ` chunk's
/// byte rate.
fn wav_seconds(file: &[u8]) -> Option<u64> {
    if file.len() < 12 || &file[..4] != b"RIFF" || &file[8..12] != b"WAVE" {
        return None;
    }
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(file.get(at..at + 4)?.try_into().ok()?))
    };
    let mut at = 12usize;
    let mut byte_rate = None;
    while at + 8 <= file.len() {
        let id = &file[at..at + 4];
        let len = u32_at(at + 4)? as usize;
        let body = at + 8;
        match id {
            b"fmt " => byte_rate = u32_at(body + 8).filter(|&r| r > 0),
            b"data" => {
                let held = len.min(file.len() - body) as u64;
                return Some(held.div_ceil(u64::from(byte_rate?)).max(1));
            }
            _ => {}
        }
        // Chunks are padded to an even length.
        at = body.checked_add(len)?.checked_add(len & 1)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(parts: &[(&str, Option<&str>, &[u8])]) -> Bytes {
        let mut out = Vec::new();
        for (name, file, data) in parts {
            out.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=\"");
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\"");
            if let Some(f) = file {
                out.extend_from_slice(
                    format!("; filename=\"{f}\"\r\nContent-Type: audio/wav").as_bytes(),
                );
            }
            out.extend_from_slice(b"\r\n\r\n");
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"--XyZ--\r\n");
        Bytes::from(out)
    }

    const CT: &str = "multipart/form-data; boundary=XyZ";

    fn read(body: Bytes) -> Result<Form, Malformed> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(Form::read(CT, body))
    }

    #[test]
    fn a_form_reads_and_writes_back_with_the_model_changed() {
        let audio: &[u8] = b"\x00\x01binary\r\n--Xy not a boundary";
        let f = read(form(&[
            ("model", None, b"whisper"),
            ("file", Some("a b.wav"), audio),
            ("language", None, b"en"),
        ]))
        .unwrap();
        assert_eq!(f.text("model").unwrap(), Some("whisper"));
        assert_eq!(f.get("file").unwrap().data, audio);
        let view: Value = serde_json::from_slice(&f.view().unwrap()).unwrap();
        assert_eq!(view["model"], "whisper");
        assert_eq!(view["file"], true);
        let written = f.encode_with("model", "whisper-1");
        let again = read(written).unwrap();
        assert_eq!(again.text("model").unwrap(), Some("whisper-1"));
        assert_eq!(again.get("file").unwrap().data, audio);
        assert_eq!(
            again.get("file").unwrap().file_name.as_deref(),
            Some("a b.wav")
        );
        assert_eq!(quoted("a \"b\"\r\n"), "a %22b%22%0D%0A");
        assert_eq!(again.text("language").unwrap(), Some("en"));
        assert_eq!(again.parts.len(), 3);
    }

    #[test]
    fn bad_forms_are_refused() {
        let not_form = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(Form::read("application/json", Bytes::from_static(b"{}")));
        assert!(not_form.is_err());
        assert!(read(Bytes::from_static(b"--XyZ\r\ngarbage")).is_err());
        let long = vec![b'a'; MAX_TEXT_FIELD as usize + 1];
        assert!(read(form(&[("prompt", None, &long)])).is_err());
        let many: Vec<(&str, Option<&str>, &[u8])> =
            (0..=MAX_PARTS).map(|_| ("x", None, &b"1"[..])).collect();
        assert!(read(form(&many)).is_err());
    }

    fn wav(byte_rate: u32, data_len: u32, held: usize) -> Vec<u8> {
        let mut w = b"RIFF\0\0\0\0WAVE".to_vec();
        w.extend_from_slice(b"LIST\x03\0\0\0abc\0");
        w.extend_from_slice(b"fmt \x10\0\0\0\x01\0\x01\0\x80\x3e\0\0");
        w.extend_from_slice(&byte_rate.to_le_bytes());
        w.extend_from_slice(b"\x02\0\x10\0");
        w.extend_from_slice(b"data");
        w.extend_from_slice(&data_len.to_le_bytes());
        w.extend(std::iter::repeat_n(0u8, held));
        w
    }

    #[test]
    fn audio_is_bounded_by_its_wav_header_or_the_floor_bitrate() {
        assert_eq!(audio_seconds_bound(&wav(32_000, 64_000, 64_000)), 2);
        assert_eq!(audio_seconds_bound(&wav(32_000, 64_001, 64_001)), 3);
        // A header claiming more than the file holds counts what it holds.
        assert_eq!(audio_seconds_bound(&wav(32_000, u32::MAX, 32_000)), 1);
        // No byte rate: the floor.
        let w = wav(0, 7_500, 7_500);
        assert_eq!(audio_seconds_bound(&w), (w.len() as u64).div_ceil(750));
        assert_eq!(audio_seconds_bound(&[0u8; 7_501]), 11);
        assert_eq!(audio_seconds_bound(b""), 0);
    }
}
