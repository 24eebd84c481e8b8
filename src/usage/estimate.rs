//! Estimating a reply's tokens with the tokenizer when the upstream did not
//! report them (pure logic): the request's text and the text delivered,
//! each read up to `ESTIMATE_TEXT` and extrapolated beyond.

use super::extract::{event_data, SseSplitter};
use super::{count_tokens, Tokens};
use bytes::{Bytes, BytesMut};
use serde_json::Value;

/// The most text the tokenizer reads per side of a record: it is slow
/// (about a few MB/s), so a larger text is counted in its first part and
/// extrapolated by length.
pub const ESTIMATE_TEXT: usize = 256 * 1024;

/// Counts tokens of at most `ESTIMATE_TEXT` of `text`, extrapolated to
/// the whole.
fn bounded_count(model: &str, text: &str) -> i64 {
    if text.len() <= ESTIMATE_TEXT {
        return count_tokens(model, text);
    }
    let mut cut = ESTIMATE_TEXT;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let counted = i128::from(count_tokens(model, &text[..cut]));
    i64::try_from(counted * text.len() as i128 / cut as i128).unwrap_or(i64::MAX)
}

/// Estimates a reply's tokens with the tokenizer when the upstream did not
/// report them: the request's messages (or prompt, or input) and the text
/// actually delivered. `reply` may be the first part of a longer reply of
/// `reply_len` bytes: its count is extrapolated.
pub fn estimate(
    model: &str,
    request: &[u8],
    reply: &[u8],
    reply_len: usize,
    streamed: bool,
) -> Tokens {
    let request: Value = serde_json::from_slice(request).unwrap_or(Value::Null);
    let mut prompt_text = String::new();
    if let Some(messages) = request["messages"].as_array() {
        for m in messages {
            push_text(&mut prompt_text, &m["content"]);
        }
    }
    // `system`: Anthropic's system prompt, a string or text blocks.
    for field in ["prompt", "input", "instructions", "system"] {
        push_text(&mut prompt_text, &request[field]);
    }
    let mut reply_text = String::new();
    let whole = reply.len() >= reply_len;
    if streamed {
        let mut splitter = SseSplitter::default();
        splitter.feed(reply, |event| {
            let data = event_data(event);
            if let Ok(v) = serde_json::from_slice::<Value>(&data) {
                for c in v["choices"].as_array().into_iter().flatten() {
                    push_text(&mut reply_text, &c["delta"]["content"]);
                    push_text(&mut reply_text, &c["text"]);
                }
                push_text(&mut reply_text, &v["delta"]);
                // Anthropic's `content_block_delta`: `{"delta": {"text"}}`.
                push_text(&mut reply_text, &v["delta"]["text"]);
            }
        });
    } else if let Ok(v) = serde_json::from_slice::<Value>(reply) {
        for c in v["choices"].as_array().into_iter().flatten() {
            push_text(&mut reply_text, &c["message"]["content"]);
            push_text(&mut reply_text, &c["text"]);
        }
        // The Responses API: output items, each with content parts.
        push_text(&mut reply_text, &v["output"]);
        // Anthropic's Messages API: content blocks.
        push_text(&mut reply_text, &v["content"]);
    } else if !whole {
        // The first part of a long JSON reply does not parse: about four
        // bytes a token.
        return Tokens {
            prompt: bounded_count(model, &prompt_text),
            completion: i64::try_from(reply_len / 4).unwrap_or(i64::MAX),
            cached: 0,
            cache_written: 0,
        };
    }
    let mut completion = bounded_count(model, &reply_text);
    if !whole && !reply.is_empty() {
        let scaled = i128::from(completion) * reply_len as i128 / reply.len() as i128;
        completion = i64::try_from(scaled).unwrap_or(i64::MAX);
    }
    Tokens {
        prompt: bounded_count(model, &prompt_text),
        completion,
        cached: 0,
        cache_written: 0,
    }
}

/// The text of a string, or of a list of strings, parts (`text`) and items
/// (`content`: Responses API input and output messages).
fn push_text(out: &mut String, v: &Value) {
    match v {
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::String(s) => out.push_str(s),
                    other => {
                        push_text(out, &other["text"]);
                        push_text(out, &other["content"]);
                    }
                }
            }
        }
        _ => {}
    }
}

/// Concatenates kept chunks once, for parsing at the end.
pub fn concat(chunks: &[Bytes]) -> Bytes {
    match chunks {
        [one] => one.clone(),
        many => {
            let mut b = BytesMut::with_capacity(many.iter().map(Bytes::len).sum());
            for c in many {
                b.extend_from_slice(c);
            }
            b.freeze()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_are_counted_in_part_and_extrapolated() {
        let unit = "lorem ipsum dolor sit amet ";
        let short = count_tokens("gpt-4o", &unit.repeat(1000));
        let long = unit.repeat(40 * 1000);
        let estimate = bounded_count("gpt-4o", &long);
        let exact = short * 40;
        assert!(
            (estimate - exact).abs() < exact / 50,
            "{estimate} vs {exact}"
        );
    }

    #[test]
    fn estimate_counts_request_and_delivered_text() {
        let request = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hello world"}]}"#;
        let stream = b"data: {\"choices\":[{\"delta\":{\"content\":\"Hello\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\" there\"}}]}\n\ndata: [DONE]\n\n";
        let t = estimate("gpt-4o", request, stream, stream.len(), true);
        assert_eq!(
            t,
            Tokens {
                prompt: 2,
                completion: 2,
                cached: 0,
                cache_written: 0
            }
        );
        let json = br#"{"choices":[{"message":{"content":"Hello there"}}]}"#;
        assert_eq!(estimate("gpt-4o", request, json, json.len(), false), t);

        // The Responses API: input items and output messages.
        let request = br#"{"model":"gpt-4o","instructions":"be","input":[
            {"role":"user","content":"hello"},
            {"role":"user","content":[{"type":"input_text","text":" world"}]}]}"#;
        let reply = br#"{"output":[{"type":"message","content":[
            {"type":"output_text","text":"Hello there"}]}]}"#;
        let t = estimate("gpt-4o", request, reply, reply.len(), false);
        assert_eq!(
            t,
            Tokens {
                prompt: 3,
                completion: 2,
                cached: 0,
                cache_written: 0
            }
        );
    }
}
