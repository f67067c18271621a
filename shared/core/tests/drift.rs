//! Drift tests: the settings table is the one definition; the documents and the infra parameter list
//! that restate it must follow. Each fails when a variable is added (or renamed) in only one place.

use std::collections::BTreeSet;
use std::path::PathBuf;

use nat_watchdog_core::settings;

fn repo_file(path: &str) -> String {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// The table in docs/CONTRACTS.md is generated: paste `settings::markdown_table()` when it changes.
#[test]
fn contracts_md_carries_the_generated_settings_table() {
    let doc = repo_file("docs/CONTRACTS.md");
    let table = settings::markdown_table();
    assert!(
        doc.contains(&table),
        "docs/CONTRACTS.md's configuration table differs from the settings table; replace it with:\n\n{table}"
    );
}

/// The environment variables infra/checker.yaml gives the function: exactly the settings marked `infra`.
fn infra_variables(template: &str) -> BTreeSet<String> {
    let mut lines = template.lines().skip_while(|l| l.trim() != "Variables:");
    let Some(header) = lines.next() else { panic!("no `Variables:` block in infra/checker.yaml") };
    let indent = header.len() - header.trim_start().len();
    lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
        .filter_map(|l| l.trim().split_once(':').map(|(k, _)| k.to_string()))
        .filter(|k| !k.is_empty() && !k.starts_with('#'))
        .collect()
}

#[test]
fn infra_passes_exactly_the_settings_marked_infra() {
    let infra = infra_variables(&repo_file("infra/checker.yaml"));
    let table: BTreeSet<String> = settings::ALL.iter().filter(|s| s.infra).map(|s| s.name.to_string()).collect();
    assert!(!infra.is_empty());
    assert_eq!(infra, table, "infra/checker.yaml's Environment.Variables vs the settings table's `infra: true`");
}

#[test]
fn the_infra_parser_reads_a_variables_block() {
    let yaml = "x:\n  Environment:\n    Variables:\n      A: !Ref A\n      B_C: !If [X, !Ref Y, !Ref AWS::NoValue]\n  Policies:\n    - P\n";
    assert_eq!(infra_variables(yaml), BTreeSet::from(["A".to_string(), "B_C".to_string()]));
}

/// Every variable of the table is read by `Config`: a garbage value is rejected naming it. (A line
/// added to the table but not to `config.rs` would be silently ignored; this fails instead.) The
/// ARN's form is the AWS adapter's to check (`nat_watchdog_aws::arn`), so Config takes it as given.
#[test]
fn config_reads_every_variable_of_the_table() {
    use nat_watchdog_core::{Config, Mode};
    for s in settings::ALL {
        let mut vars = std::collections::HashMap::from([("AVAILABILITY_ZONE".to_string(), "us-east-1a".to_string())]);
        vars.insert(s.name.to_string(), "\0{garbage}".to_string());
        match Config::from_map(&vars, Mode::DetectOnlyAllowed) {
            Err(e) => assert_eq!(e.variable(), s.name, "{e}"),
            Ok(c) if s.name == "FAILOVER_STATE_MACHINE_ARN" => assert_eq!(c.state_machine_arn.as_deref(), Some("\0{garbage}")),
            Ok(_) => panic!("{}=garbage was accepted: is it read by Config::from_map?", s.name),
        }
    }
}
