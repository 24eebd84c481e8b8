//! Estimating a reply's tokens with the tokenizer when the upstream did not
//! report them (pure logic): the request's text and every kind of output
//! delivered (text, reasoning and thinking, tool-call arguments, refusals,
//! transcripts), each read up to `ESTIMATE_TEXT` and extrapolated beyond.

use super::{count_tokens, ReplyKind, Tokens};
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
/// report them: the request's messages (or prompt, or input) and the output
/// actually delivered. `reply` may be the first part of a longer reply of
/// `reply_len` bytes (for `StreamText`: of text): its count is
/// extrapolated.
pub fn estimate(
    model: &str,
    request: &[u8],
    reply: &[u8],
    reply_len: usize,
    kind: ReplyKind,
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
    // Gemini's: `contents` and its system instruction (each with `parts`),
    // an embedding's `content`, a batch's `requests`.
    for field in [
        "contents",
        "systemInstruction",
        "system_instruction",
        "content",
        "requests",
    ] {
        push_text(&mut prompt_text, &request[field]);
    }
    let prompt = bounded_count(model, &prompt_text);
    let whole = reply.len() >= reply_len;
    let reply_text = match kind {
        ReplyKind::StreamText | ReplyKind::Text => String::from_utf8_lossy(reply).into_owned(),
        ReplyKind::Json => match serde_json::from_slice::<Value>(reply) {
            Ok(v) => json_output(&v),
            Err(_) if !whole => {
                // The first part of a long JSON reply does not parse: about
                // four bytes a token.
                return Tokens {
                    prompt,
                    completion: i64::try_from(reply_len / 4).unwrap_or(i64::MAX),
                    cached: 0,
                    cache_written: 0,
                };
            }
            Err(_) => String::new(),
        },
    };
    let mut completion = bounded_count(model, &reply_text);
    if !whole && !reply.is_empty() {
        let scaled = i128::from(completion) * reply_len as i128 / reply.len() as i128;
        completion = i64::try_from(scaled).unwrap_or(i64::MAX);
    }
    Tokens {
        prompt,
        completion,
        cached: 0,
        cache_written: 0,
    }
}

/// Every kind of output of a whole JSON reply: Chat Completions' message
/// (content, reasoning, refusal, tool-call arguments), Completions' text,
/// the Responses API's output items (content, reasoning summaries,
/// arguments), Anthropic's content blocks (text, thinking, tool input), a
/// transcript's text.
fn json_output(v: &Value) -> String {
    let mut out = String::new();
    for c in v["choices"].as_array().into_iter().flatten() {
        let m = &c["message"];
        for field in ["content", "reasoning_content", "reasoning", "refusal"] {
            push_text(&mut out, &m[field]);
        }
        for call in m["tool_calls"].as_array().into_iter().flatten() {
            push_text(&mut out, &call["function"]["arguments"]);
        }
        push_text(&mut out, &m["function_call"]["arguments"]);
        push_text(&mut out, &c["text"]);
    }
    for item in v["output"].as_array().into_iter().flatten() {
        push_text(&mut out, &item["content"]);
        push_text(&mut out, &item["summary"]);
        push_text(&mut out, &item["arguments"]);
    }
    for block in v["content"].as_array().into_iter().flatten() {
        push_text(&mut out, &block["text"]);
        push_text(&mut out, &block["thinking"]);
        if let Some(input) = block.get("input").filter(|i| !i.is_null()) {
            out.push_str(&input.to_string());
        }
    }
    push_text(&mut out, &v["text"]);
    // Gemini's candidates: their parts' text and function calls.
    for c in v["candidates"].as_array().into_iter().flatten() {
        for part in c["content"]["parts"].as_array().into_iter().flatten() {
            push_text(&mut out, &part["text"]);
            if let Some(call) = part.get("functionCall").filter(|c| !c.is_null()) {
                out.push_str(&call["args"].to_string());
            }
        }
    }
    out
}

/// The text of a string, or of a list of strings, parts (`text`) and items
/// (`content`: Responses API input and output messages), or of an object
/// with them (Gemini's content holds `parts`).
fn push_text(out: &mut String, v: &Value) {
    match v {
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::String(s) => out.push_str(s),
                    other => push_text(out, other),
                }
            }
        }
        // A part or an item (`text`, `content`), or Gemini's content
        // (`parts`).
        Value::Object(_) => {
            push_text(out, &v["text"]);
            push_text(out, &v["content"]);
            push_text(out, &v["parts"]);
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
        let text = b"Hello there";
        let t = estimate("gpt-4o", request, text, text.len(), ReplyKind::StreamText);
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
        assert_eq!(
            estimate("gpt-4o", request, json, json.len(), ReplyKind::Json),
            t
        );
        // Gemini's contents and candidates.
        let gemini = br#"{"contents":[{"role":"user","parts":[{"text":"hello world"}]}]}"#;
        let reply =
            br#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Hello there"}]}}]}"#;
        assert_eq!(
            estimate("gpt-4o", gemini, reply, reply.len(), ReplyKind::Json),
            t
        );

        // The Responses API: input items and output messages.
        let request = br#"{"model":"gpt-4o","instructions":"be","input":[
            {"role":"user","content":"hello"},
            {"role":"user","content":[{"type":"input_text","text":" world"}]}]}"#;
        let reply = br#"{"output":[{"type":"message","content":[
            {"type":"output_text","text":"Hello there"}]}]}"#;
        let t = estimate("gpt-4o", request, reply, reply.len(), ReplyKind::Json);
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

    /// Reasoning, thinking and tool calls count as the reply, in each
    /// API's shape.
    #[test]
    fn every_kind_of_output_counts() {
        let request = br#"{"model":"gpt-4o","input":"hi"}"#;
        let count = |reply: &Value| {
            let bytes = reply.to_string();
            estimate(
                "gpt-4o",
                request,
                bytes.as_bytes(),
                bytes.len(),
                ReplyKind::Json,
            )
            .completion
        };
        let words = "one two three four five six seven eight";
        let n = count_tokens("gpt-4o", words);
        let chat = serde_json::json!({"choices": [{"message": {"content": null,
            "reasoning_content": words,
            "tool_calls": [{"function": {"name": "f", "arguments": words}}]}}]});
        assert_eq!(count(&chat), 2 * n);
        let responses = serde_json::json!({"output": [
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": words}]},
            {"type": "function_call", "arguments": words}]});
        assert_eq!(count(&responses), 2 * n);
        let anthropic = serde_json::json!({"content": [
            {"type": "thinking", "thinking": words}, {"type": "text", "text": words}]});
        assert_eq!(count(&anthropic), 2 * n);
        let transcript = serde_json::json!({"text": words});
        assert_eq!(count(&transcript), n);
    }
}
