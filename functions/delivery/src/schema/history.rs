//! refinery's history against this build's migrations, judged by refinery's own rules, and the
//! ledger of released migrations that keeps them append-only (`migrations/README.md` is its
//! human form; a test keeps the two and the files equal).
//!
//! refinery refuses to migrate a database whose history has a migration this build lacks, one
//! whose name or checksum differs from the file ("divergent"), or a file older than the newest
//! applied migration that was never applied ("missing"). Intermediate builds left databases in
//! the last two states: V1 and V9 were edited after their first release, and V8 was added after
//! V9 and V11 had shipped. `webhooks migrate --repair` brings those databases up: it re-applies
//! the current text of a migration whose history holds a *known* earlier checksum (both are
//! re-runnable), and applies a known late-added migration out of order, recording each in the
//! history as refinery would. Anything unknown is refused.

use std::fmt;

/// A released migration: version, name and refinery's checksum of its file. Never edited once
/// released; a change is a new, higher version (a test holds the files to it).
pub const RELEASED: &[(i32, &str, u64)] = &[
    (1, "booking_requests", 15_492_761_157_709_655_516),
    (2, "webhook_deliveries", 10_879_343_993_170_819_700),
    (3, "capture_triggers", 10_119_861_284_753_468_989),
    (4, "health_views", 11_616_119_616_825_020_469),
    (5, "retry_failed_webhooks", 7_860_034_768_172_159_936),
    (6, "security", 3_891_408_154_029_450_231),
    (7, "robustness", 3_941_103_122_086_069_544),
    (8, "superseded", 7_985_046_620_109_796_698),
    (9, "operations", 6_599_912_695_166_217_576),
    (11, "enum_status_capture", 597_295_780_886_447_014),
    (12, "capture_cost", 13_528_370_193_665_938_579),
    (13, "hot_path", 852_277_615_084_165_961),
    (14, "hardening", 3_798_203_024_450_564_264),
    (15, "lifecycle", 14_738_014_005_625_731_583),
    (16, "endpoint_health", 10_704_761_598_916_224_414),
    (17, "attempt_log_key", 3_123_488_367_451_122_260),
    (18, "listener_awake", 8_022_616_181_680_550_661),
];

/// A checksum a released migration had in intermediate builds, which `--repair` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Earlier {
    pub(crate) version: i32,
    pub(crate) checksum: u64,
    /// The builds (commits) that applied it.
    pub(crate) builds: &'static str,
}

/// Every earlier text of a released migration that a database may have been migrated with.
pub(crate) const EARLIER: &[Earlier] = &[
    Earlier {
        version: 1,
        checksum: 5_846_267_837_831_688_413,
        builds: "4811ded to 92e4ab0^ (before booking_requests was closed to the API roles)",
    },
    Earlier {
        version: 1,
        checksum: 3_668_036_351_216_851_519,
        builds: "92e4ab0 to c50ac4f^ (the same statements, an earlier comment)",
    },
    Earlier {
        version: 9,
        checksum: 15_660_662_313_880_493_004,
        builds: "42f366c to aa3d1ca^ (webhook_stats added to V4's view)",
    },
    Earlier {
        version: 9,
        checksum: 2_089_741_888_961_913_294,
        builds: "aa3d1ca to d17ffba^ (booking_requests.created_at required)",
    },
];

/// Migrations added after a higher version had shipped, which `--repair` applies out of order
/// (they can run after the later ones): V8 came after V9 and V11 (builds e5636d4 to f4a4fc4^).
pub(crate) const LATE: &[i32] = &[8];

/// One applied migration as refinery's history holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Applied {
    pub(crate) version: i32,
    pub(crate) name: String,
    pub(crate) checksum: u64,
}

/// What refinery would say about one migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Finding {
    /// Newer than everything applied: `webhooks migrate` applies it.
    Pending(String),
    /// Older than the newest applied one and never applied: refinery refuses; `--repair`
    /// applies it when it is a known late addition.
    Skipped { name: String, repairable: bool },
    /// Applied with another name or text than this build's: refinery refuses; `--repair`
    /// re-applies it when the applied text is a known earlier one.
    Divergent {
        name: String,
        earlier: Option<Earlier>,
    },
    /// Applied, and not in this build: a newer build migrated this database.
    Unknown(String),
}

impl Finding {
    /// True when `webhooks migrate --repair` can set it right.
    pub(crate) fn repairable(&self) -> bool {
        match self {
            Finding::Pending(_) => true,
            Finding::Skipped { repairable, .. } => *repairable,
            Finding::Divergent { earlier, .. } => earlier.is_some(),
            Finding::Unknown(_) => false,
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Pending(name) => write!(f, "{name} is not applied"),
            Finding::Skipped { name, repairable } => {
                write!(
                    f,
                    "{name} was never applied, although later migrations were"
                )?;
                if *repairable {
                    write!(
                        f,
                        " (it was added after them, in builds e5636d4 to f4a4fc4^)"
                    )?;
                }
                Ok(())
            }
            Finding::Divergent {
                name,
                earlier: Some(e),
            } => write!(
                f,
                "{name} was applied with an earlier text (builds {})",
                e.builds
            ),
            Finding::Divergent {
                name,
                earlier: None,
            } => write!(
                f,
                "{name} was applied with a text this build does not know (changed by hand?)"
            ),
            Finding::Unknown(name) => write!(f, "{name} is applied but not in this build"),
        }
    }
}

/// Why refinery would refuse this history (`None`: it would apply what is pending): every
/// finding but the pending ones, and whether `--repair` can set them all right.
pub(crate) fn refusal(findings: &[Finding]) -> Option<(Vec<String>, bool)> {
    let refused: Vec<String> = findings
        .iter()
        .filter(|f| !matches!(f, Finding::Pending(_)))
        .map(ToString::to_string)
        .collect();
    let repairable = findings.iter().all(Finding::repairable);
    (!refused.is_empty()).then_some((refused, repairable))
}

/// `V8__superseded`.
pub(crate) fn label(version: i32, name: &str) -> String {
    format!("V{version}__{name}")
}

/// Judges `applied` against this build's migrations `build` (version, name, checksum), as
/// refinery does, in version order.
pub(crate) fn compare(applied: &[Applied], build: &[(i32, String, u64)]) -> Vec<Finding> {
    let newest = applied.iter().map(|a| a.version).max();
    let mut findings = Vec::new();
    for a in applied {
        match build.iter().find(|(v, _, _)| *v == a.version) {
            None => findings.push(Finding::Unknown(label(a.version, &a.name))),
            Some((v, name, checksum)) if *name != a.name || *checksum != a.checksum => {
                let earlier = EARLIER
                    .iter()
                    .find(|e| e.version == *v && e.checksum == a.checksum && *name == a.name)
                    .copied();
                findings.push(Finding::Divergent {
                    name: label(*v, name),
                    earlier,
                });
            }
            Some(_) => {}
        }
    }
    for (version, name, _) in build {
        if applied.iter().any(|a| a.version == *version) {
            continue;
        }
        findings.push(match newest {
            Some(newest) if *version < newest => Finding::Skipped {
                name: label(*version, name),
                repairable: LATE.contains(version),
            },
            _ => Finding::Pending(label(*version, name)),
        });
    }
    findings.sort_by_key(|f| match f {
        Finding::Pending(n)
        | Finding::Skipped { name: n, .. }
        | Finding::Divergent { name: n, .. }
        | Finding::Unknown(n) => version_of(n),
    });
    findings
}

fn version_of(label: &str) -> i32 {
    label
        .trim_start_matches('V')
        .split("__")
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build() -> Vec<(i32, String, u64)> {
        [
            (1, "a", 10),
            (8, "late", 80),
            (9, "b", 90),
            (11, "c", 110),
            (12, "d", 120),
        ]
        .iter()
        .map(|(v, n, c)| (*v, (*n).to_owned(), *c))
        .collect()
    }

    fn applied(rows: &[(i32, &str, u64)]) -> Vec<Applied> {
        rows.iter()
            .map(|(v, n, c)| Applied {
                version: *v,
                name: (*n).to_owned(),
                checksum: *c,
            })
            .collect()
    }

    #[test]
    fn the_history_is_judged_as_refinery_judges_it() {
        assert!(
            compare(
                &applied(&[
                    (1, "a", 10),
                    (8, "late", 80),
                    (9, "b", 90),
                    (11, "c", 110),
                    (12, "d", 120)
                ]),
                &build()
            )
            .is_empty()
        );
        assert_eq!(
            compare(&applied(&[(1, "a", 10)]), &build()),
            vec![
                Finding::Pending("V8__late".into()),
                Finding::Pending("V9__b".into()),
                Finding::Pending("V11__c".into()),
                Finding::Pending("V12__d".into()),
            ]
        );
        // An intermediate build: V8 missing under V11, V1 with another text, V13 unknown.
        let found = compare(
            &applied(&[(1, "a", 11), (9, "b", 90), (11, "c", 110), (13, "e", 130)]),
            &build(),
        );
        assert_eq!(
            found,
            vec![
                Finding::Divergent {
                    name: "V1__a".into(),
                    earlier: None
                },
                Finding::Skipped {
                    name: "V8__late".into(),
                    repairable: true
                },
                // Below the newest applied (V13, unknown here): refinery refuses it too.
                Finding::Skipped {
                    name: "V12__d".into(),
                    repairable: false
                },
                Finding::Unknown("V13__e".into()),
            ]
        );
        assert_eq!(
            found.iter().map(Finding::repairable).collect::<Vec<_>>(),
            vec![false, true, false, false]
        );
    }

    #[test]
    fn a_known_earlier_text_is_repairable() {
        let real: Vec<(i32, String, u64)> = RELEASED
            .iter()
            .map(|(v, n, c)| (*v, (*n).to_owned(), *c))
            .collect();
        let mut history: Vec<Applied> = RELEASED
            .iter()
            .map(|(v, n, c)| Applied {
                version: *v,
                name: (*n).to_owned(),
                checksum: *c,
            })
            .collect();
        history[8].checksum = 2_089_741_888_961_913_294; // V9 as aa3d1ca left it
        let found = compare(&history, &real);
        assert_eq!(found.len(), 1);
        assert!(found[0].repairable(), "{}", found[0]);
        assert!(found[0].to_string().contains("aa3d1ca"), "{}", found[0]);
    }
}
