//! CONFORMANCE.md is generated from the tests' `/// UNH-IOL:` tags and the
//! plan tables (riscsi_tests::unh_iol): this checks the committed file is
//! the one the sources give, and that every tag is sound. With
//! RISCSI_WRITE_CONFORMANCE=1 it writes the file instead.

use std::path::PathBuf;

use riscsi_tests::unh_iol::{self, PLANS};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace")
        .to_path_buf()
}

fn citations() -> Vec<unh_iol::Citation> {
    match unh_iol::scan(&workspace()) {
        Ok(citations) => citations,
        Err(errors) => panic!(
            "bad UNH-IOL tags:\n{}",
            errors
                .iter()
                .map(|e| format!("  {e}\n"))
                .collect::<String>()
        ),
    }
}

#[test]
fn every_tag_names_an_applicable_item_of_a_plan() {
    let problems = unh_iol::check(&citations());
    assert!(
        problems.is_empty(),
        "{}",
        problems
            .iter()
            .map(|p| format!("  {p}\n"))
            .collect::<String>()
    );
}

#[test]
fn conformance_md_is_current() {
    let citations = citations();
    let generated = unh_iol::render(&citations);
    let path = workspace().join("CONFORMANCE.md");
    if std::env::var_os("RISCSI_WRITE_CONFORMANCE").is_some() {
        std::fs::write(&path, &generated).expect("write CONFORMANCE.md");
        for plan in PLANS {
            let t = unh_iol::totals(plan, &citations);
            eprintln!(
                "{}: {} items, {} covered, {} not applicable, {} missing ({}/{} applicable)",
                plan.tag,
                t.items,
                t.covered,
                t.not_applicable,
                t.missing,
                t.covered,
                t.applicable()
            );
        }
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "CONFORMANCE.md is not what the tests' UNH-IOL tags give: run \
         `RISCSI_WRITE_CONFORMANCE=1 cargo test -p riscsi-tests --test conformance_matrix` \
         and commit the result"
    );
}
