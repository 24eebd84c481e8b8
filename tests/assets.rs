//! The committed completions and man pages match the command line.

#[test]
fn completions_and_man_pages_are_up_to_date() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stale = Vec::new();
    for (path, bytes) in chatgate::commands::assets::render().unwrap() {
        if std::fs::read(root.join(&path)).ok().as_deref() != Some(&bytes[..]) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale or missing: {stale:?}; run `cargo run -- generate-assets` and commit the result"
    );
    // No page is left over from a removed command.
    for dir in ["completions", "man"] {
        let generated: Vec<_> = chatgate::commands::assets::render()
            .unwrap()
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let rel = std::path::Path::new(dir).join(entry.unwrap().file_name());
            assert!(
                generated.contains(&rel),
                "{} is not generated any more; delete it",
                rel.display()
            );
        }
    }
}

/// Hidden flags and commands stay out of the completions as they stay out
/// of `--help` and the man pages; the rest is offered.
#[test]
fn completions_leave_out_what_is_hidden() {
    let files = chatgate::commands::assets::render().unwrap();
    let completions: Vec<_> = files
        .iter()
        .filter(|(path, _)| path.starts_with("completions"))
        .collect();
    assert_eq!(completions.len(), 3);
    for (path, bytes) in completions {
        let text = String::from_utf8_lossy(bytes);
        for hidden in ["no-accounting", "generate-assets"] {
            assert!(!text.contains(hidden), "{} offers {hidden}", path.display());
        }
        for offered in ["listen", "demo", "recharge", "prune", "database"] {
            assert!(text.contains(offered), "{} lacks {offered}", path.display());
        }
    }
    let man = files.iter().find(|(p, _)| p.ends_with("chatgate-serve.1"));
    let man = String::from_utf8_lossy(&man.expect("a serve page").1).into_owned();
    assert!(!man.contains("no\\-accounting") && !man.contains("no-accounting"));
}
