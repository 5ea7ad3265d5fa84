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


def test_readme_is_the_first_five_minutes_and_links_to_pages_that_exist():
    """README stays short (the documentation site has the rest) and every page it links to is there."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) < 250
    assert 'pip install -e ".[dev]" && python -m pytest -q' in readme  # the test command
    links = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert links and [link for link in links if not (REPO / link).is_file()] == []
    preview = re.search(r"!\[[^]]*\]\((examples/[^)]+)\)", readme).group(1)
    assert (REPO / preview).is_file() and (REPO / preview).stat().st_size < 1_000_000


def test_the_documentation_pages_speak_of_the_project_only():
    pages = sorted((REPO / "docs").glob("*.md")) + [REPO / "CONTRIBUTING.md", REPO / "CHANGELOG.md"]
    found = [
        f"{path.relative_to(REPO)}:{n}: {line.strip()}"
        for path in pages
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if WORDS.search(line)
    ]
    assert found == []
