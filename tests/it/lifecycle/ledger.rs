//! Released migrations are immutable: a change is a new file with a higher version. The ledger
//! is `delivery::schema::RELEASED` and its human form, `migrations/README.md`.

use delivery::schema::{RELEASED, known_migrations};

#[test]
fn released_migrations_are_never_edited_and_new_ones_come_last() {
    let known = known_migrations();
    let newest_released = RELEASED.iter().map(|(v, _, _)| *v).max().unwrap_or(0);
    for (version, name, checksum) in &known {
        match RELEASED.iter().find(|(v, _, _)| v == version) {
            Some((_, released_name, released_checksum)) => assert_eq!(
                (*released_name, *released_checksum),
                (name.as_str(), *checksum),
                "V{version}__{name} was released: a change is a new file with a higher version"
            ),
            None => assert!(
                *version > newest_released,
                "V{version}__{name} is new, but V{newest_released} was released already: a new \
                 migration takes a higher version"
            ),
        }
    }
    for (version, name, _) in RELEASED {
        assert!(
            known.iter().any(|(v, _, _)| v == version),
            "released V{version}__{name} is gone from migrations/"
        );
    }
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations/README.md"),
    )
    .expect("migrations/README.md");
    for (version, name, checksum) in RELEASED {
        let row = readme
            .lines()
            .find(|line| line.starts_with(&format!("| V{version}__{name} |")))
            .unwrap_or_else(|| panic!("migrations/README.md lists V{version}__{name}"));
        assert!(
            row.trim_end().ends_with(&format!("| {checksum} |")),
            "migrations/README.md gives V{version}__{name} checksum {checksum}: {row}"
        );
    }
}
