"""README, the tests and the benchmarks speak of the project only: they say what the code does and how
anyone runs it, never which tracker entry asked for it or the machinery of a particular place."""

from __future__ import annotations

import re

from conftest import REPO

WORDS = re.compile(
    r"\bissue \d+|\bissue's\b|files_at|give_back|\bcarry: \[|device time|device budget|/work/|\blent\b", re.I
)


def test_no_tracker_numbers_or_machine_specifics_in_the_docs_tests_and_benches():
    files = [REPO / "README.md", REPO / "pyproject.toml"]
    files += sorted((REPO / "tests").glob("*.py")) + sorted((REPO / "bench").glob("*.py"))
    files += sorted((REPO / "bench").glob("*.sh"))
    found = [
        f"{path.relative_to(REPO)}:{n}: {line.strip()}"
        for path in files
        if path.name != "test_docs_text.py"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if WORDS.search(line)
    ]
    assert found == []
