//! Gemini's usage and output, as its replies carry them: `usageMetadata`
//! (`promptTokenCount` with `toolUsePromptTokenCount` as the prompt,
//! `candidatesTokenCount` with `thoughtsTokenCount` as the completion,
//! `cachedContentTokenCount` as cached; a stream's every chunk carries the
//! counts so far, the last one all of them), and the text of each
//! candidate's parts (text, thoughts, function calls' arguments) for the
//! estimate when a stream ends before its counts.

use super::extract::Reported;
use serde::Deserialize;

pub const USAGE_KEY: &[u8] = b"\"usageMetadata\"";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: Option<i64>,
    #[serde(default)]
    tool_use_prompt_token_count: Option<i64>,
    #[serde(default)]
    candidates_token_count: Option<i64>,
    #[serde(default)]
    thoughts_token_count: Option<i64>,
    #[serde(default)]
    cached_content_token_count: Option<i64>,
}

/// The counts of a `usageMetadata` object (read from its start; whatever
/// follows it is not read).
pub fn parse(object: &[u8]) -> Option<Reported> {
    let mut de = serde_json::Deserializer::from_slice(object);
    let u = UsageMetadata::deserialize(&mut de).ok()?;
    let prompt = u
        .prompt_token_count
        .map(|p| p.saturating_add(u.tool_use_prompt_token_count.unwrap_or(0)));
    // A reply of no candidate text (a blocked prompt, a function call
    // only) still has a completion: none.
    let completion = match (u.candidates_token_count, u.thoughts_token_count) {
        (None, None) => prompt.map(|_| 0),
        (c, t) => Some(c.unwrap_or(0).saturating_add(t.unwrap_or(0))),
    };
    Some(Reported::counted(
        prompt,
        completion,
        u.cached_content_token_count,
    ))
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    candidates: Vec<Candidate>,
}

#[derive(Deserialize)]
struct Candidate {
    #[serde(default)]
    content: Option<Content>,
}

#[derive(Deserialize)]
struct Content {
    #[serde(default)]
    parts: Vec<serde_json::Value>,
}

/// Calls `each` with the output of one event's data (a chunk of a
/// `streamGenerateContent` reply): its parts' text (thoughts included) and
/// function calls' arguments.
pub fn output_text(data: &[u8], each: &mut impl FnMut(&str)) {
    if data.first() != Some(&b'{') {
        return;
    }
    let Ok(chunk) = serde_json::from_slice::<Chunk>(data) else {
        return;
    };
    for part in chunk
        .candidates
        .iter()
        .filter_map(|c| c.content.as_ref())
        .flat_map(|c| &c.parts)
    {
        if let Some(t) = part["text"].as_str() {
            each(t);
        }
        if let Some(call) = part.get("functionCall").or(part.get("function_call")) {
            each(&call["args"].to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::extract::{Dialect, SseSplitter, UsageScanner};
    use super::*;
    use crate::usage::Tokens;

    fn tokens(r: Option<Reported>) -> Option<Tokens> {
        r.and_then(|r| r.tokens())
    }

    fn t(prompt: i64, completion: i64, cached: i64) -> Option<Tokens> {
        Tokens::read(prompt, completion, cached)
    }

    #[test]
    fn usage_metadata_of_a_reply_thoughts_tools_and_cache_included() {
        let reply = br#"{"candidates":[{"content":{"parts":[{"text":"hi \"usageMetadata\": {}"}],"role":"model"}}],
            "usageMetadata":{"promptTokenCount":100,"candidatesTokenCount":20,"thoughtsTokenCount":30,
            "cachedContentTokenCount":60,"toolUsePromptTokenCount":5,"totalTokenCount":155},"modelVersion":"gemini-2.5-flash"}"#;
        assert_eq!(tokens(Dialect::Gemini.from_json(reply)), t(105, 50, 60));
        // The OpenAI dialect does not read it, nor Gemini's OpenAI's.
        assert_eq!(Dialect::Usage.from_json(reply), None);
        let openai = br#"{"usage":{"prompt_tokens":7,"completion_tokens":2}}"#;
        assert_eq!(Dialect::Gemini.from_json(openai), None);
        // No candidates (a blocked prompt): the prompt counts.
        let blocked = br#"{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":9,"totalTokenCount":9}}"#;
        assert_eq!(tokens(Dialect::Gemini.from_json(blocked)), t(9, 0, 0));
    }

    #[test]
    fn a_stream_counts_its_last_chunk_and_its_text() {
        let events = concat!(
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hel\"}]}}],\"usageMetadata\":{\"promptTokenCount\":8,\"candidatesTokenCount\":1}}\r\n\r\n",
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"lo\",\"thought\":true},{\"functionCall\":{\"name\":\"f\",\"args\":{\"a\":1}}}]}}],\"usageMetadata\":{\"promptTokenCount\":8,\"candidatesTokenCount\":4,\"thoughtsTokenCount\":2}}\r\n\r\n",
        );
        let mut reported = Reported::default();
        let mut text = String::new();
        SseSplitter::default().feed(events.as_bytes(), |e| {
            reported = reported.then(Dialect::Gemini.inspect_event(e).reported);
            Dialect::Gemini.output_text(e, &mut |t| text.push_str(t));
        });
        assert_eq!(reported.tokens(), t(8, 6, 0));
        assert_eq!(text, "Hello{\"a\":1}");
        // A reply read in pieces finds the same.
        let body = events.replace("data: ", "").replace("\r\n\r\n", "");
        let mut scanner = UsageScanner::new(Dialect::Gemini);
        for piece in body.as_bytes().chunks(7) {
            scanner.feed(piece);
        }
        assert_eq!(tokens(scanner.reported()), t(8, 6, 0));
        assert!(Dialect::Gemini.has_usage_object(body.as_bytes()));
        assert!(!Dialect::Usage.has_usage_object(body.as_bytes()));
    }
}
