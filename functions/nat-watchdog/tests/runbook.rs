//! docs/RUNBOOK.md has a section `## <anchor>` for every alarm of infra/README.md, and each tells the
//! on-call the command to run first.

use crate::support::workspace_root;

#[test]
fn every_alarm_of_the_infra_readme_has_a_runbook_section_starting_with_a_command() {
    let infra = std::fs::read_to_string(workspace_root().join("infra/README.md")).unwrap();
    let runbook = std::fs::read_to_string(workspace_root().join("docs/RUNBOOK.md")).unwrap();
    let alarms: Vec<String> = infra
        .lines()
        .filter_map(|l| l.strip_prefix("| `<stack>-"))
        .filter_map(|l| l.split('`').next())
        .map(|name| name.trim_start_matches("<AZ>-").to_string())
        .collect();
    assert!(alarms.len() >= 8, "alarm table not found in infra/README.md: {alarms:?}");
    for anchor in &alarms {
        let heading = format!("\n## {anchor}\n");
        let at = runbook.find(&heading).unwrap_or_else(|| panic!("docs/RUNBOOK.md has no section `## {anchor}`"));
        let section = runbook[at + heading.len()..].split("\n## ").next().unwrap();
        for part in ["**Means.**", "**First.** `nat-watchdog", "**Decide.**", "**Confirm.**"] {
            assert!(section.contains(part), "section {anchor} lacks {part}");
        }
    }
}
