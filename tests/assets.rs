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
