//! What a clean API path is: the rules the door applies before it looks
//! a path up, and that the configuration's `endpoints.allow` entries obey.
//! Pure functions, no I/O.

/// Refuses every path an upstream might read differently from the
/// gateway: empty segments, dot segments, encoded `/` or `\`, `;`
/// parameters, a trailing `/`, control characters, and percent-escapes of
/// characters that need none (or that are not escapes at all). The error
/// says what is wrong, for the client's user.
pub fn check_path(path: &str) -> Result<(), String> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err("The path must begin with `/`.".into());
    }
    if bytes.len() == 1 {
        return Ok(());
    }
    if path.starts_with("//") {
        return Err(
            "The path begins with `//`: the client's base URL probably ends in `/`; remove that `/`."
                .into(),
        );
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'%' => {
                let hex = |k: usize| bytes.get(k).and_then(|c| (*c as char).to_digit(16));
                let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) else {
                    return Err("The path has a `%` that is not a percent-escape.".into());
                };
                let c = (hi * 16 + lo) as u8;
                if c == b'/' || c == b'\\' {
                    return Err("The path has an encoded `/` or `\\` (`%2F`, `%5C`).".into());
                }
                if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
                    return Err(format!(
                        "The path percent-escapes `{}`, which needs no escape; write it as it is.",
                        c as char
                    ));
                }
                if c < 0x20 || c == 0x7f {
                    return Err("The path has an encoded control character.".into());
                }
                i += 3;
                continue;
            }
            b'\\' => return Err("The path has a `\\`.".into()),
            b';' => return Err("The path has a `;` parameter.".into()),
            b if b < 0x20 || b == 0x7f => {
                return Err("The path has a control character.".into());
            }
            _ => {}
        }
        i += 1;
    }
    if path.len() > 1 && path.ends_with('/') {
        return Err("The path ends in `/`; remove it.".into());
    }
    // Segments, without a searcher: a single pass over the slashes.
    let mut start = 1;
    for end in memchr::memchr_iter(b'/', &bytes[1..])
        .map(|i| i + 1)
        .chain(std::iter::once(bytes.len()))
    {
        match &bytes[start..end] {
            b"" => return Err("The path has an empty segment (`//`).".into()),
            b"." | b".." => return Err("The path has a `.` or `..` segment.".into()),
            _ => {}
        }
        start = end + 1;
    }
    Ok(())
}

/// Checks one `endpoints.allow` entry: a clean path after `/v1`, like
/// `/batches`.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    if !prefix.starts_with('/') || prefix.starts_with("/v1/") || prefix == "/v1" {
        return Err(format!(
            "`{prefix}` must be a path after /v1 that begins with `/`, like `/batches`"
        ));
    }
    check_path(prefix).map_err(|e| format!("`{prefix}`: {e}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_root_and_plain_paths_are_clean() {
        for clean in ["/", "/healthz", "/v1/models/ft%3Agpt-4o"] {
            assert_eq!(super::check_path(clean), Ok(()), "{clean}");
        }
        for bad in ["//", "/a/", "/a//b", "/./a", "", "a"] {
            assert!(super::check_path(bad).is_err(), "{bad}");
        }
    }
}
