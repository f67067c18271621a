"""Every relative link and #anchor in the repository's Markdown resolves (check_links.py), and the
checker itself catches a missing file, a missing heading and follows GitHub's slug rules."""

from __future__ import annotations

from check_links import anchors, broken_links, slug


def test_every_relative_link_and_anchor_in_the_repository_resolves():
    assert broken_links() == []


def test_the_checker_finds_a_missing_file_and_a_missing_anchor(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "RUNBOOK.md").write_text("# Runbook\n\n## checker-silent\n\n## Deploy (`make deploy`)\n")
    (tmp_path / "README.md").write_text(
        "[ok](docs/RUNBOOK.md#checker-silent) [ok2](docs/RUNBOOK.md#deploy-make-deploy) [web](https://example.com/x)\n"
        "[gone](infra/README-deploy.md) [bad anchor](docs/RUNBOOK.md#checker-errors) [self](#nowhere)\n"
        "`[in code](missing.md)`\n\n```\n[in a fence](missing-too.md)\n```\n")
    found = broken_links(tmp_path)
    assert found == ["README.md: (infra/README-deploy.md): infra/README-deploy.md does not exist",
                     "README.md: (docs/RUNBOOK.md#checker-errors): no heading #checker-errors in docs/RUNBOOK.md",
                     "README.md: (#nowhere): no heading #nowhere in README.md"]


def test_slugs_follow_github():
    assert slug("Deploy (`make deploy`)") == "deploy-make-deploy"
    assert slug("What the watchdog costs (`make cost`)") == "what-the-watchdog-costs-make-cost"
    assert slug("connectivity-degraded") == "connectivity-degraded"


def test_repeated_headings_get_numbered(tmp_path):
    page = tmp_path / "x.md"
    page.write_text("## Results\n\n## Results\n")
    assert anchors(page) == {"results", "results-1"}
