"""Every alarm resource of every template in infra/ (nested or not, whatever its Condition) ends its
description with `Runbook: docs/RUNBOOK.md#<anchor>`, the anchor being the alarm name without its
`<stack>-` / `<stack>-<AZ>-` prefix, and docs/RUNBOOK.md has a section `## <anchor>` with the four
parts the on-call reads (meaning, first `nat-watchdog` command, decision tree, confirmation). The
alarm tables of infra/README.md list exactly these alarms. Read from the templates as written, so
an alarm of a template that the default parameters leave out (recovery.yaml) is checked too."""

from __future__ import annotations

import re
from pathlib import Path

from template_eval import INFRA, load

ROOT = INFRA.parent
ALARM_TYPES = ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm")
SECTION_PARTS = ("**Means.**", "**First.** `nat-watchdog", "**Decide.**", "**Confirm.**")


def _text(value) -> str | None:
    """A plain string, or the template of `!Sub "..."` / `!Sub ["...", {...}]`."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        sub = value["Fn::Sub"]
        return sub if isinstance(sub, str) else sub[0]
    return None


def template_alarms(infra: Path = INFRA) -> dict[str, tuple[str, str | None]]:
    """`file:Logical` -> (anchor, description) for every alarm resource of infra/*.yaml."""
    out = {}
    for path in sorted(infra.glob("*.yaml")):
        for logical, res in (load(path).get("Resources") or {}).items():
            if res.get("Type") not in ALARM_TYPES:
                continue
            props = res.get("Properties", {})
            name = _text(props.get("AlarmName")) or ""
            anchor = re.sub(r"^(\$\{[^}]+\}-)+", "", name)
            out[f"{path.name}:{logical}"] = (anchor, _text(props.get("AlarmDescription")))
    return out


def runbook_problems(infra: Path = INFRA, runbook: Path = ROOT / "docs" / "RUNBOOK.md") -> list[str]:
    text = runbook.read_text()
    problems = []
    for where, (anchor, description) in template_alarms(infra).items():
        if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", anchor):
            problems.append(f"{where}: AlarmName must be <stack>-[<AZ>-]<anchor>, got anchor {anchor!r}")
            continue
        link = f"Runbook: docs/RUNBOOK.md#{anchor}"
        if description is None or not description.rstrip().endswith(link):
            problems.append(f"{where}: AlarmDescription does not end with `{link}`")
        heading = f"\n## {anchor}\n"
        if heading not in text:
            problems.append(f"{where}: docs/RUNBOOK.md has no section `## {anchor}`")
            continue
        section = text.split(heading, 1)[1].split("\n## ", 1)[0]
        problems += [f"{where}: section `## {anchor}` lacks {part}" for part in SECTION_PARTS if part not in section]
    return problems


def test_every_alarm_of_every_template_links_to_its_runbook_section():
    found = template_alarms()
    # The scan itself works: the alarms of the root, checker and recovery templates are all seen.
    assert {"template.yaml:FailoverExecutionFailedAlarm", "checker.yaml:CheckerSilentAlarm",
            "recovery.yaml:RecoveryGaveUpAlarm"} <= set(found), sorted(found)
    assert runbook_problems() == []


def test_the_infra_readme_alarm_tables_list_exactly_the_templates_alarms():
    readme = (INFRA / "README.md").read_text()
    listed = {re.sub(r"^<AZ>-", "", m) for m in re.findall(r"^\| `<stack>-([^`]+)`", readme, flags=re.M)}
    assert listed == {anchor for anchor, _ in template_alarms().values()}


def test_the_check_catches_a_missing_link_a_missing_section_and_a_missing_part(tmp_path):
    infra = tmp_path / "infra"
    infra.mkdir()
    (infra / "a.yaml").write_text(
        "Resources:\n"
        "  Good:\n    Type: AWS::CloudWatch::Alarm\n    Properties:\n"
        '      AlarmName: !Sub "${DeploymentName}-${AvailabilityZone}-good-one"\n'
        "      AlarmDescription: !Sub >-\n        It fires.\n        Runbook: docs/RUNBOOK.md#good-one\n"
        "  NoLink:\n    Type: AWS::CloudWatch::Alarm\n    Properties:\n"
        '      AlarmName: !Sub "${AWS::StackName}-no-link"\n      AlarmDescription: "It fires. Runbook: docs/RUNBOOK.md"\n'
        "  NoSection:\n    Type: AWS::CloudWatch::Alarm\n    Properties:\n"
        '      AlarmName: !Sub "${AWS::StackName}-no-section"\n'
        "      AlarmDescription: 'Runbook: docs/RUNBOOK.md#no-section'\n"
        "  Thin:\n    Type: AWS::CloudWatch::Alarm\n    Properties:\n"
        '      AlarmName: !Sub "${AWS::StackName}-thin"\n      AlarmDescription: "Runbook: docs/RUNBOOK.md#thin"\n'
        "  NotAnAlarm:\n    Type: AWS::SNS::Topic\n")
    runbook = tmp_path / "RUNBOOK.md"
    full = "**Means.** x\n\n**First.** `nat-watchdog --stack S status`\n\n**Decide.** y\n\n**Confirm.** z\n"
    runbook.write_text(f"# Runbook\n\n## good-one\n\n{full}\n## no-link\n\n{full}\n## thin\n\n**Means.** x\n")
    assert runbook_problems(infra, runbook) == [
        "a.yaml:NoLink: AlarmDescription does not end with `Runbook: docs/RUNBOOK.md#no-link`",
        "a.yaml:NoSection: docs/RUNBOOK.md has no section `## no-section`",
        "a.yaml:Thin: section `## thin` lacks **First.** `nat-watchdog",
        "a.yaml:Thin: section `## thin` lacks **Decide.**",
        "a.yaml:Thin: section `## thin` lacks **Confirm.**",
    ]
