#!/usr/bin/env python3
"""Embed the NAT instance's boot files into the launch template's user data in infra/nat-az.yaml.

    python3 infra/nat-instance/render_userdata.py           # rewrite the generated block
    python3 infra/nat-instance/render_userdata.py --check   # exit 1 when the block is out of date

Why embedding (and not S3 or SSM): the instance then needs no download permission and no object
that `sam deploy` must package, a stack update carries the exact scripts of the commit it deploys
(a new launch template version), and the text is reviewable in the template. The one copy of each
script is the file in this directory; tests/infra/test_nat_layer.py fails when the embedded copy
differs from it.

The user data is `Fn::Base64` of `Fn::Join` over literal pieces and references: literal pieces are
never substituted by CloudFormation, so the scripts need no `${}` escaping. EC2 limits user data to
16 KB before base64: when the plain text would not fit, every file is embedded gzip-compressed and
base64-encoded instead (deterministic: mtime 0).
"""

from __future__ import annotations

import base64
import gzip
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE.parent / "nat-az.yaml"
BEGIN = "# BEGIN GENERATED USERDATA"
END = "# END GENERATED USERDATA"
USER_DATA_LIMIT = 16384
# Room left for the referenced values (ENI id, CIDR, region, numbers) in the size check.
REFERENCE_ALLOWANCE = 200

# (file in this directory, where the instance gets it, mode)
FILES = [
    ("configure-nat.sh", "/usr/local/sbin/configure-nat.sh", "0755"),
    ("nat-boot.sh", "/usr/local/sbin/nat-boot.sh", "0755"),
    ("nat-watchdog-nat.service", "/etc/systemd/system/nat-watchdog-nat.service", "0644"),
]

HEADER = """#!/bin/bash
# nat-watchdog managed NAT instance. Generated from infra/nat-instance/ by render_userdata.py.
set -euo pipefail
install -d -m 0755 /etc/nat-watchdog
cat > /etc/nat-watchdog/nat.env <<'NAT_WATCHDOG_ENV'
"""

# (literal text before the value, the value as a CloudFormation expression)
ENV = [
    ("NAT_ENI_ID=", {"Ref": "NatEni"}),
    ("\nNAT_SOURCE_CIDR=", {"Ref": "VpcCidr"}),
    ("\nNAT_EGRESS=", {"Fn::If": ["HasElasticIp", "eni", "primary"]}),
    ("\nAWS_REGION=", {"Ref": "AWS::Region"}),
    ("\nATTACH_WAIT_SECONDS=", {"Ref": "AttachWaitSeconds"}),
]

FOOTER = """systemctl daemon-reload
systemctl enable nat-watchdog-nat.service
# --no-block: nat-boot.sh may wait minutes for the previous instance to release the ENI.
systemctl start --no-block nat-watchdog-nat.service
"""


def _delimiter(name: str) -> str:
    return "NAT_WATCHDOG_EOF_" + "".join(c if c.isalnum() else "_" for c in name)


def install_commands(compressed: bool) -> str:
    out = []
    for name, dest, mode in FILES:
        text = (HERE / name).read_text()
        if not text.endswith("\n"):
            raise ValueError(f"{name}: must end with a newline")
        delim = _delimiter(name)
        if compressed:
            payload = base64.encodebytes(gzip.compress(text.encode(), mtime=0)).decode()
            out.append(f"base64 -d <<'{delim}' | gunzip > {dest}\n{payload}{delim}\nchmod {mode} {dest}\n")
        else:
            if any(line == delim for line in text.splitlines()):
                raise ValueError(f"{name}: contains the heredoc delimiter line {delim}")
            out.append(f"install -m {mode} /dev/stdin {dest} <<'{delim}'\n{text}{delim}\n")
    return "".join(out)


def pieces(compressed: bool | None = None) -> list:
    """The Fn::Join list; `compressed=None` picks plain text when it fits in the user data limit."""
    if compressed is None:
        plain = pieces(compressed=False)
        size = sum(len(p.encode()) for p in plain if isinstance(p, str)) + REFERENCE_ALLOWANCE
        return plain if size <= USER_DATA_LIMIT else pieces(compressed=True)
    out: list = []
    literal = HEADER
    for text, value in ENV:
        out += [literal + text, value]
        literal = ""
    out.append("\nNAT_WATCHDOG_ENV\n" + install_commands(compressed) + FOOTER)
    return out


def user_data_size(rendered: list) -> int:
    return sum(len(p.encode()) for p in rendered if isinstance(p, str)) + REFERENCE_ALLOWANCE


# ------------------------------------------------------------------------------------ YAML output
def _block(text: str, indent: str) -> str:
    """`text` as a YAML literal block scalar (the item marker is written by the caller)."""
    chomp = "+" if text.endswith("\n\n") else "" if text.endswith("\n") else "-"
    # An explicit indentation indicator keeps a leading space or newline of the text intact.
    header = "|" + ("2" if text[:1] in (" ", "\n") else "") + chomp
    lines = text.split("\n")
    if text.endswith("\n"):
        lines = lines[:-1]
    return header + "\n" + "".join((indent + line if line else "") + "\n" for line in lines)


def _scalar_expr(value) -> str:
    if "Ref" in value:
        return "{Ref: " + value["Ref"] + "}"
    cond, a, b = value["Fn::If"]
    return "{'Fn::If': [" + cond + ", " + a + ", " + b + "]}"


def render_block(indent: str) -> str:
    """The generated lines, starting at `indent` (the indentation of the UserData key)."""
    lines = [f"{indent}{BEGIN} (python3 infra/nat-instance/render_userdata.py; do not edit by hand)\n",
             f"{indent}UserData:\n", f"{indent}  Fn::Base64:\n", f"{indent}    Fn::Join:\n",
             f"{indent}      - \"\"\n", f"{indent}      -\n"]
    item = indent + "        - "
    for p in pieces():
        if isinstance(p, str):
            # A block scalar's lines must be indented deeper than the "- " marker.
            lines.append(item + _block(p, indent + "          "))
        else:
            lines.append(item + _scalar_expr(p) + "\n")
    lines.append(f"{indent}{END}\n")
    return "".join(lines)


def rendered_template() -> str:
    text = TEMPLATE.read_text()
    start = text.index(BEGIN)
    line_start = text.rindex("\n", 0, start) + 1
    indent = text[line_start:start]
    end = text.index("\n", text.index(END, start)) + 1
    return text[:line_start] + render_block(indent) + text[end:]


def main(argv: list[str]) -> int:
    check = "--check" in argv
    size = user_data_size(pieces())
    if size > USER_DATA_LIMIT:
        print(f"render_userdata: user data would be {size} bytes, over EC2's {USER_DATA_LIMIT}", file=sys.stderr)
        return 1
    new = rendered_template()
    if check:
        if new != TEMPLATE.read_text():
            print(f"render_userdata: {TEMPLATE} is out of date: run python3 infra/nat-instance/render_userdata.py",
                  file=sys.stderr)
            return 1
        return 0
    TEMPLATE.write_text(new)
    print(f"render_userdata: {TEMPLATE.name} user data {size} bytes (limit {USER_DATA_LIMIT})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
