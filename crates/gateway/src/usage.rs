//! Reading token usage out of upstream responses, exactly: plain JSON bodies, and SSE streams
//! whose usage arrives as a final chunk (`choices: []` or `choices: null`) or cumulatively in
//! every chunk. Counts each kind once, keeps the assistant text for estimation when a
//! provider reports nothing, and decides which SSE events to forward (the usage chunk the
//! gateway asked for on its own is stripped). Pure: bytes in, decisions out.

use bytes::Bytes;
use serde_json::Value;

/// Tokens of one request. `prompt` includes `cached` (as OpenAI reports it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt: i64,
    pub cached: i64,
    pub completion: i64,
}

/// Reads an OpenAI `usage` object (chat or embeddings).
pub fn parse_usage(u: &Value) -> Option<Usage> {
    let obj = u.as_object()?;
    let prompt = obj.get("prompt_tokens").and_then(Value::as_i64)?;
    let completion = obj.get("completion_tokens").and_then(Value::as_i64).unwrap_or(0);
    let cached = obj
        .get("prompt_tokens_details")
        .and_then(|d| d.get("cached_tokens"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if prompt < 0 || completion < 0 || cached < 0 || cached > prompt {
        return None;
    }
    Some(Usage {
        prompt,
        cached,
        completion,
    })
}

/// One complete SSE event and whether it goes to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub bytes: Bytes,
    pub forward: bool,
}

/// Incremental SSE reader for chat streams.
#[derive(Debug, Default)]
pub struct SseScanner {
    buf: bytes::BytesMut,
    client_asked_usage: bool,
    usage: Option<Usage>,
    text: String,
    done: bool,
}

/// The members of a stream chunk the gateway reads; the rest is skipped, not built.
#[derive(serde::Deserialize)]
struct Chunk {
    #[serde(default)]
    usage: Option<Value>,
    #[serde(default)]
    choices: Option<Value>,
}

/// The `data:` payload of one SSE event: borrowed when it is one line (the usual case),
/// joined with `\n` when the event has several data lines.
fn event_data(raw: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let mut lines = raw
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter_map(|l| l.strip_prefix(b"data:"))
        .map(|d| d.strip_prefix(b" ").unwrap_or(d));
    let Some(first) = lines.next() else {
        return std::borrow::Cow::Borrowed(&[]);
    };
    match lines.next() {
        None => std::borrow::Cow::Borrowed(first),
        Some(second) => {
            let mut joined = [first, second].join(&b'\n');
            for l in lines {
                joined.push(b'\n');
                joined.extend_from_slice(l);
            }
            std::borrow::Cow::Owned(joined)
        }
    }
}

impl SseScanner {
    pub fn new(client_asked_usage: bool) -> Self {
        SseScanner {
            client_asked_usage,
            ..Default::default()
        }
    }

    /// Feeds bytes; returns the events completed by them, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(chunk);
        let mut out = vec![];
        while let Some(end) = find_event_end(&self.buf) {
            let raw = self.buf.split_to(end).freeze();
            out.push(self.event(raw));
        }
        out
    }

    /// What is left when the stream ends without a final blank line.
    pub fn finish(&mut self) -> Option<SseEvent> {
        if self.buf.iter().all(|b| b.is_ascii_whitespace()) {
            self.buf.clear();
            return None;
        }
        let raw = std::mem::take(&mut self.buf).freeze();
        Some(self.event(raw))
    }

    fn event(&mut self, raw: Bytes) -> SseEvent {
        let mut forward = true;
        let data = event_data(&raw);
        if data.trim_ascii() == b"[DONE]" {
            self.done = true;
        } else if let Ok(v) = serde_json::from_slice::<Chunk>(&data) {
            // Cumulative providers repeat usage in every chunk: the latest one is the total.
            if let Some(u) = v.usage.as_ref().and_then(parse_usage) {
                self.usage = Some(u);
            }
            let no_choices = match &v.choices {
                None | Some(Value::Null) => true,
                Some(Value::Array(a)) => a.is_empty(),
                _ => false,
            };
            if let Some(Value::Array(cs)) = &v.choices {
                for c in cs {
                    if let Some(t) = c.get("delta").and_then(|d| d.get("content")).and_then(Value::as_str) {
                        self.text.push_str(t);
                    }
                }
            }
            // The usage-only chunk exists because the gateway asked for it: the client did not.
            if no_choices && v.usage.as_ref().is_some_and(|u| !u.is_null()) && !self.client_asked_usage {
                forward = false;
            }
        }
        SseEvent { bytes: raw, forward }
    }

    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }
    pub fn text(&self) -> &str {
        &self.text
    }
    pub fn done(&self) -> bool {
        self.done
    }
}

/// The bytes of the events to forward, in order, as one buffer (one write to the client per
/// upstream read instead of one per event); `None` when there are none.
pub fn forwarded(events: Vec<SseEvent>) -> Option<Bytes> {
    let mut fw = events.into_iter().filter(|e| e.forward).map(|e| e.bytes);
    let first = fw.next()?;
    let Some(second) = fw.next() else { return Some(first) };
    let mut out = bytes::BytesMut::with_capacity(first.len() + second.len());
    out.extend_from_slice(&first);
    out.extend_from_slice(&second);
    for b in fw {
        out.extend_from_slice(&b);
    }
    Some(out.freeze())
}

fn find_event_end(buf: &[u8]) -> Option<usize> {
    let a = buf.windows(2).position(|w| w == b"\n\n").map(|p| p + 2);
    let b = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

/// Fen for `tokens` at `fen_per_million`, rounded half-up (exact integer arithmetic).
pub fn cost_fen(tokens: i64, fen_per_million: i64) -> i64 {
    let v = tokens.max(0) as i128 * fen_per_million.max(0) as i128;
    ((v + 500_000) / 1_000_000).min(i64::MAX as i128) as i64
}

/// The assistant text of a non-streaming chat response (for estimation).
pub fn response_text(body: &Value) -> String {
    let mut s = String::new();
    if let Some(Value::Array(cs)) = body.get("choices") {
        for c in cs {
            if let Some(t) = c.get("message").and_then(|m| m.get("content")).and_then(Value::as_str) {
                s.push_str(t);
            }
        }
    }
    s
}

/// The text of a chat request's messages (string contents and text parts).
pub fn prompt_text(body: &Value) -> String {
    let mut parts: Vec<String> = vec![];
    if let Some(Value::Array(ms)) = body.get("messages") {
        for m in ms {
            match m.get("content") {
                Some(Value::String(s)) => parts.push(s.clone()),
                Some(Value::Array(ps)) => {
                    for p in ps {
                        if let Some(t) = p.get("text").and_then(Value::as_str) {
                            parts.push(t.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
    }
    if let Some(input) = body.get("input") {
        match input {
            Value::String(s) => parts.push(s.clone()),
            Value::Array(a) => parts.extend(a.iter().filter_map(Value::as_str).map(str::to_string)),
            _ => {}
        }
    }
    parts.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sse(v: &Value) -> String {
        format!("data: {v}\n\n")
    }

    #[test]
    fn final_usage_chunk_is_read_and_stripped_when_the_client_did_not_ask() {
        let mut s = SseScanner::new(false);
        let stream = [
            sse(&serde_json::json!({"choices":[{"delta":{"content":"hello"}}]})),
            sse(&serde_json::json!({"choices":[{"delta":{"content":" hello"}}]})),
            sse(&serde_json::json!({"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":3}}})),
            "data: [DONE]\n\n".to_string(),
        ]
        .concat();
        // Split at awkward places: the scanner must not care.
        let bytes = stream.as_bytes();
        let mut events = vec![];
        for part in bytes.chunks(5) {
            events.extend(s.push(part));
        }
        assert_eq!(events.len(), 4);
        assert_eq!(events.iter().map(|e| e.forward).collect::<Vec<_>>(), [true, true, false, true]);
        assert_eq!(
            s.usage(),
            Some(Usage {
                prompt: 7,
                cached: 3,
                completion: 2
            })
        );
        assert_eq!(s.text(), "hello hello");
        assert!(s.done());
        let kept: Vec<u8> = events.iter().filter(|e| e.forward).flat_map(|e| e.bytes.to_vec()).collect();
        assert!(!String::from_utf8(kept.clone()).unwrap().contains("usage"));
        // Forwarded as one buffer: exactly the kept events' bytes, in order.
        assert_eq!(forwarded(events).unwrap().to_vec(), kept);
        assert_eq!(forwarded(vec![]), None);
    }

    #[test]
    fn multi_line_data_and_crlf_events_are_read() {
        let mut s = SseScanner::new(true);
        let ev = s.push(b"event: message\r\ndata: {\"choices\":[{\"delta\":\r\ndata: {\"content\":\"hi\"}}],\r\ndata:\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":1}}\r\n\r\ndata: [DONE]\n\n");
        assert_eq!(ev.len(), 2);
        assert_eq!(s.text(), "hi");
        assert_eq!(s.usage().map(|u| (u.prompt, u.completion)), Some((2, 1)));
        assert!(s.done());
        assert!(ev.iter().all(|e| e.forward));
    }

    #[test]
    fn cumulative_usage_counts_once_and_choices_null_is_a_usage_chunk() {
        let mut s = SseScanner::new(true);
        for n in 1..=3 {
            s.push(
                sse(&serde_json::json!({"choices":[{"delta":{"content":"x"}}],"usage":{"prompt_tokens":5,"completion_tokens":n}}))
                    .as_bytes(),
            );
        }
        assert_eq!(
            s.usage(),
            Some(Usage {
                prompt: 5,
                cached: 0,
                completion: 3
            })
        );
        let ev = s.push(sse(&serde_json::json!({"choices":null,"usage":{"prompt_tokens":5,"completion_tokens":4}})).as_bytes());
        assert!(ev[0].forward, "the client asked for usage: forward it");
        assert_eq!(s.usage().map(|u| u.completion), Some(4));
    }

    #[test]
    fn costs_round_half_up_to_the_fen() {
        assert_eq!(cost_fen(1_000_000, 400), 400);
        assert_eq!(cost_fen(1250, 400), 1); // 0.5 fen → 1
        assert_eq!(cost_fen(1249, 400), 0);
        assert_eq!(cost_fen(0, 400), 0);
        assert_eq!(cost_fen(i64::MAX, i64::MAX), i64::MAX);
    }
}
