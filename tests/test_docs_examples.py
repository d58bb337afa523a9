"""
Every ```python block of the documentation's pages (docs/**/*.md) and of README.md runs: sybil's MyST parser finds
the blocks and each page's blocks run in order in one namespace, in a temporary folder (an example may save a
model). The conftest's autouse fixture keeps torch on one thread.
"""

from pathlib import Path

import pytest
from sybil import Sybil
from sybil.parsers.myst import PythonCodeBlockParser

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
DOCS_PAGES = sorted(path for path in DOCS.rglob("*.md") if "_build" not in path.relative_to(DOCS).parts)
PAGES = [ROOT / "README.md", *DOCS_PAGES]
PAGES_WITH_EXAMPLES = [path for path in PAGES if "```python" in path.read_text(encoding="utf-8")]

SYBIL = Sybil(parsers=[PythonCodeBlockParser()], path=str(ROOT))


def name(page):
    return page.relative_to(ROOT).as_posix()


def test_the_pages_have_examples():
    names = {name(path) for path in PAGES_WITH_EXAMPLES}
    assert {"README.md", "docs/guide/quickstart.md", "docs/modules/meta_rim_ppo.md"} <= names


@pytest.mark.parametrize("page", PAGES_WITH_EXAMPLES, ids=name)
def test_page_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    document = SYBIL.parse(page)
    examples = list(document)
    fences = sum(line.strip() == "```python" for line in page.read_text(encoding="utf-8").splitlines())
    assert len(examples) == fences, f"{page}: sybil found {len(examples)} python blocks, the page has {fences}"
    for example in examples:
        example.evaluate()
