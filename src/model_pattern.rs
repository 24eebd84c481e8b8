//! Model name patterns, as the config, the users' allow-lists and the
//! price table write them: glob syntax (`gpt-4o*`, `claude-*`, `*`). Most
//! are `*` or a plain name; those two are answered without glob's matcher,
//! which walks `*` against every suffix of the name on each request.

pub struct ModelPattern {
    glob: glob::Pattern,
    kind: Kind,
}

enum Kind {
    Any,
    Exact,
    Glob,
}

/// Whether `name` is a pattern rather than one model's name.
pub fn is_pattern(name: &str) -> bool {
    name.contains(['*', '?', '['])
}

impl ModelPattern {
    pub fn new(pattern: &str) -> Result<ModelPattern, glob::PatternError> {
        let glob = glob::Pattern::new(pattern)?;
        let kind = if pattern == "*" {
            Kind::Any
        } else if is_pattern(pattern) {
            Kind::Glob
        } else {
            Kind::Exact
        };
        Ok(ModelPattern { glob, kind })
    }

    pub fn matches(&self, model: &str) -> bool {
        match self.kind {
            Kind::Any => true,
            Kind::Exact => self.glob.as_str() == model,
            Kind::Glob => self.glob.matches(model),
        }
    }

    /// Whether it names one model (no `*`, `?` or `[`).
    pub fn is_name(&self) -> bool {
        matches!(self.kind, Kind::Exact)
    }

    pub fn as_str(&self) -> &str {
        self.glob.as_str()
    }
}

impl std::fmt::Debug for ModelPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.glob.as_str().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::ModelPattern;
    use proptest::prelude::*;

    proptest! {
        /// The short cuts answer as glob does, for any pattern and name.
        #[test]
        fn answers_as_glob_does(pattern in "[a-c*?\\[\\]/.-]{0,6}", model in "[a-c/.-]{0,8}") {
            if let Ok(glob) = glob::Pattern::new(&pattern) {
                let ours = ModelPattern::new(&pattern).unwrap();
                prop_assert_eq!(ours.matches(&model), glob.matches(&model));
            }
        }
    }

    #[test]
    fn star_and_plain_names_take_the_short_cuts() {
        for (pattern, model) in [("*", ""), ("*", "meta-llama/Llama-3"), ("gpt-4o", "gpt-4o")] {
            assert!(ModelPattern::new(pattern).unwrap().matches(model));
        }
        assert!(!ModelPattern::new("gpt-4o").unwrap().matches("gpt-4o-mini"));
        assert!(ModelPattern::new("gpt-4o*").unwrap().matches("gpt-4o-mini"));
    }
}
