"""The documentation's runnable examples run: every Python block with `asyncio.run(`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import RunPython

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def runnable_blocks() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for number, code in enumerate(BLOCK.findall(page.read_text()), start=1):
            if "asyncio.run(" in code:
                found.append((f"{page.relative_to(ROOT)}#{number}", code))
    return found


BLOCKS = runnable_blocks()


def test_the_readme_has_a_runnable_example() -> None:
    assert any(name.startswith("README.md") for name, _ in BLOCKS)


@pytest.mark.parametrize(("name", "code"), BLOCKS, ids=[name for name, _ in BLOCKS])
def test_documented_example_runs(name: str, code: str, run_python: RunPython) -> None:
    done = run_python("-c", code)
    assert done.returncode == 0, f"{name} failed:\n{done.stderr}"
