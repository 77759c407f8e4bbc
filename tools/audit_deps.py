"""`make audit-deps`: pip-audit over the pinned dependencies (constraints.txt).

Fails (exit 1) on any known vulnerability, naming the package, version, advisory and the
fixed versions. pip-audit needs a vulnerability service (PyPI's JSON API by default, or
OSV); where none answers, every dependency comes back unaudited: that is reported loudly
as SKIPPED and exits 0, or exits 2 with TRIALSTREAM_REQUIRE_AUDIT=1 (set it wherever the
service is reachable, so an outage cannot pass unnoticed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    report = subprocess.run(  # noqa: S603 - our own venv's pip-audit, fixed arguments
        [
            str(Path(sys.executable).with_name("pip-audit")),
            "--requirement",
            str(ROOT / "constraints.txt"),
            "--no-deps",
            "--disable-pip",
            "--progress-spinner",
            "off",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        dependencies = json.loads(report.stdout)["dependencies"]
    except (json.JSONDecodeError, KeyError):
        print(f"pip-audit failed (exit {report.returncode}):\n{report.stderr}", file=sys.stderr)
        return 1
    found = [(d, v) for d in dependencies for v in d.get("vulns", [])]
    for dep, vuln in found:
        fixed = ", ".join(vuln.get("fix_versions", [])) or "no fixed version yet"
        print(f"VULNERABLE {dep['name']} {dep['version']}: {vuln['id']} (fixed in {fixed})")
    if found:
        return 1
    unaudited = [d for d in dependencies if "skip_reason" in d]
    if unaudited and len(unaudited) == len(dependencies):
        print(
            f"SKIPPED: no vulnerability service answered; none of {len(dependencies)} pinned "
            f"dependencies could be audited (first: {unaudited[0]['skip_reason']})"
        )
        return 2 if os.environ.get("TRIALSTREAM_REQUIRE_AUDIT") == "1" else 0
    for dep in unaudited:
        print(f"unaudited: {dep['name']}: {dep['skip_reason']}")
    print(f"OK: {len(dependencies) - len(unaudited)} pinned dependencies, no known vulnerability")
    return 0


if __name__ == "__main__":
    sys.exit(main())
