"""Relative links and #anchors of the repository's Markdown files resolve (`make link-check`, also run by
tests/infra/test_links.py). External links (http:, https:, mailto:) are not followed: no network.

Anchors follow GitHub's rule: the heading text lower-cased, punctuation other than '-' and '_' dropped,
spaces to '-', a repeated slug suffixed -1, -2, ...; explicit <a name="..."> / id="..." count too."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIP_DIRS = {".git", "target", "node_modules", ".aws-sam", "out", ".venv", ".venv-iac", ".venv-checkov", "corpus", "artifacts"}
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)
FENCE = re.compile(r"^(\s*)(```|~~~).*?^\1\2\s*$", re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)


def markdown_files(root: Path = ROOT) -> list[Path]:
    return sorted(p for p in root.rglob("*.md")
                  if not any(part in SKIP_DIRS or part.startswith(".venv") for part in p.relative_to(root).parts))


def slug(heading: str) -> str:
    text = re.sub(r"<[^>]+>", "", heading)                 # inline HTML
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links keep their text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text, flags=re.UNICODE)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    out = set()
    for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, flags=re.M):
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    out |= set(re.findall(r"<a\s+(?:name|id)=\"([^\"]+)\"", text))
    out |= set(re.findall(r"\bid=\"([^\"]+)\"", text))
    return out


def broken_links(root: Path = ROOT) -> list[str]:
    problems = []
    cache: dict[Path, set[str]] = {}
    for md in markdown_files(root):
        text = md.read_text(encoding="utf-8")
        stripped = CODE_SPAN.sub("", FENCE.sub("", text))
        targets = [m.group(1) for m in LINK.finditer(stripped)] + REF_DEF.findall(stripped)
        for target in targets:
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, flags=re.I):  # http:, https:, mailto:, ...
                continue
            path_part, _, anchor = target.partition("#")
            dest = md if not path_part else (root / path_part.lstrip("/") if path_part.startswith("/")
                                             else (md.parent / path_part))
            dest = dest.resolve()
            where = f"{md.relative_to(root)}: ({target})"
            if not dest.exists():
                problems.append(f"{where}: {path_part} does not exist")
                continue
            if anchor and dest.suffix == ".md":
                cache.setdefault(dest, anchors(dest))
                if anchor not in cache[dest]:
                    problems.append(f"{where}: no heading #{anchor} in {dest.relative_to(root)}")
    return problems


if __name__ == "__main__":
    found = broken_links()
    for p in found:
        print(p, file=sys.stderr)
    print(f"link-check: {len(markdown_files())} Markdown files, {len(found)} broken link(s)")
    sys.exit(1 if found else 0)
