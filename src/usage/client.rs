//! Which client made a request, from its `User-Agent`, as one of a fixed
//! set of families: records keep the family (never the raw header, which
//! any client can fill with anything), so `usage report --by client` shows
//! which tool spends. The first pattern that matches wins.

/// The families, as records and reports name them.
pub const FAMILIES: [&str; 13] = [
    "claude-code",
    "codex",
    "gemini-cli",
    "opencode",
    "aider",
    "openai-python",
    "openai-node",
    "anthropic-python",
    "anthropic-node",
    "google-genai",
    "open-webui",
    "browser",
    "other",
];

/// (what the header begins with or holds, the family), in the order they
/// are tried: the agents first (they may carry an SDK's name too).
const PATTERNS: [(Match, &str); 14] = [
    (Match::Starts("claude-cli/"), "claude-code"),
    (Match::Starts("codex_"), "codex"),
    (Match::Starts("codex-"), "codex"),
    // `GeminiCLI/…`, `GeminiCLI-tui/0.61.0/model (…)`.
    (Match::Starts("GeminiCLI"), "gemini-cli"),
    (Match::Holds("opencode"), "opencode"),
    (Match::Holds("aider"), "aider"),
    (Match::Starts("OpenAI/Python"), "openai-python"),
    (Match::Starts("OpenAI/JS"), "openai-node"),
    (Match::Starts("Anthropic/Python"), "anthropic-python"),
    (Match::Starts("Anthropic/JS"), "anthropic-node"),
    (Match::Holds("google-genai-sdk/"), "google-genai"),
    (Match::Holds("open-webui"), "open-webui"),
    (Match::Holds("Open WebUI"), "open-webui"),
    (Match::Starts("Mozilla/"), "browser"),
];

#[derive(Clone, Copy)]
enum Match {
    Starts(&'static str),
    Holds(&'static str),
}

/// The family of a `User-Agent` (`other` without one).
pub fn family(user_agent: Option<&[u8]>) -> &'static str {
    let Some(ua) = user_agent else {
        return "other";
    };
    PATTERNS
        .iter()
        .find(|(m, _)| match m {
            Match::Starts(p) => ua.starts_with(p.as_bytes()),
            Match::Holds(p) => memchr::memmem::find(ua, p.as_bytes()).is_some(),
        })
        .map_or("other", |(_, family)| family)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_sdks_and_browsers_by_their_user_agents() {
        for (ua, family) in [
            ("claude-cli/2.1.332 (external, sdk-cli)", "claude-code"),
            (
                "codex_exec/0.171.0 (Debian 12.0.0; x86_64) xterm (codex_exec; 0.171.0)",
                "codex",
            ),
            ("codex_cli_rs/0.171.0 (Mac OS 15.1.0; arm64)", "codex"),
            ("GeminiCLI/0.61.0 (linux; x64)", "gemini-cli"),
            (
                "GeminiCLI-tui/0.61.0/gemini-3.1-pro-preview (linux; x64; terminal)",
                "gemini-cli",
            ),
            ("opencode/1.18.33 ai-sdk/provider-utils/3.0.0", "opencode"),
            ("aider/0.86.2 OpenAI/Python 1.99.0", "aider"),
            ("OpenAI/Python 1.99.0", "openai-python"),
            ("OpenAI/JS 5.12.0", "openai-node"),
            ("Anthropic/Python 0.60.0", "anthropic-python"),
            ("Anthropic/JS 1.15.0", "anthropic-node"),
            ("google-genai-sdk/3.6.1 gl-node/v20.20.2", "google-genai"),
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/156.0",
                "browser",
            ),
            ("curl/8.5.0", "other"),
            ("", "other"),
        ] {
            assert_eq!(super::family(Some(ua.as_bytes())), family, "{ua}");
            assert!(FAMILIES.contains(&family));
        }
        assert_eq!(super::family(None), "other");
    }
}
