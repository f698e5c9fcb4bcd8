"""The documentation cannot rot: every Python block runs, and the site builds and links.

- Every ```python block in README.md and docs/ (and in docstrings under src/) runs here,
  and its printed output is checked against the ``#>`` lines that follow each print
  (pytest-examples). Each block runs alone, in a namespace of its own, as a reader who
  copies that one block would run it (blocks of a page still run in order: a block may
  use the tables an earlier block of its page created). To rewrite the ``#>`` lines
  after a deliberate change: ``python -m pytest tests/test_docs.py --update-examples``.
- Blocks that use DynamoDB run against a moto server of this module's own: the URL
  ``http://localhost:8000`` in a block (DynamoDB Local's default) is pointed at it, and so
  is any client without an ``endpoint_url`` (``AWS_ENDPOINT_URL_DYNAMODB``), so the
  "real AWS" examples run too, without AWS.
- ``mkdocs build --strict`` builds the site into a temporary directory; the expected pages
  must exist and every internal link and anchor must resolve.
"""

from __future__ import annotations

import dataclasses
import html.parser
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

pytest_examples = pytest.importorskip(
    "pytest_examples", reason="the docs extra is not installed: pip install -e '.[docs]'"
)
from pytest_examples import CodeExample, EvalExample, find_examples  # noqa: E402

from tests.support import moto_server  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
LOCAL_ENDPOINT = "http://localhost:8000"

# Pages the site must have (source path -> built path).
EXPECTED_PAGES = {
    "index.md": "index.html",
    "getting-started.md": "getting-started/index.html",
    "cli.md": "cli/index.html",
    "concepts/item-layout.md": "concepts/item-layout/index.html",
    "concepts/access-patterns.md": "concepts/access-patterns/index.html",
    "concepts/lifecycle.md": "concepts/lifecycle/index.html",
    "concepts/schedule-and-ttl.md": "concepts/schedule-and-ttl/index.html",
    "concepts/deduplication.md": "concepts/deduplication/index.html",
    "concepts/transactions.md": "concepts/transactions/index.html",
    "seats.md": "seats/index.html",
    "reliability.md": "reliability/index.html",
    "performance.md": "performance/index.html",
    "how-to/embed.md": "how-to/embed/index.html",
    "how-to/logging.md": "how-to/logging/index.html",
    "how-to/persistence-layer.md": "how-to/persistence-layer/index.html",
    "how-to/transaction-builder.md": "how-to/transaction-builder/index.html",
    "how-to/provision-tables.md": "how-to/provision-tables/index.html",
    "how-to/testing.md": "how-to/testing/index.html",
    "reference/index.md": "reference/index.html",
    "reference/operations.md": "reference/operations/index.html",
    "reference/models.md": "reference/models/index.html",
    "reference/persistence.md": "reference/persistence/index.html",
    "reference/transactions.md": "reference/transactions/index.html",
    "reference/errors.md": "reference/errors/index.html",
    "changelog.md": "changelog/index.html",
}


# -- every code block runs -----------------------------------------------------------------


def _pages() -> dict[str, list[CodeExample]]:
    """Python examples grouped by file, in file order."""
    pages: dict[str, list[CodeExample]] = {}
    sources = [ROOT / "README.md", *sorted(DOCS.rglob("*.md")), ROOT / "src" / "enrollkit"]
    for example in find_examples(*sources):
        if example.prefix_settings().get("test") == "skip":
            continue
        pages.setdefault(str(example.path.relative_to(ROOT)), []).append(example)
    for examples in pages.values():
        examples.sort(key=lambda example: example.start_line)
    return pages


PAGES = _pages()


def _uses_dynamodb(page: str) -> bool:
    """A page whose examples reach DynamoDB: they run against a moto server."""
    return any("DynamoDBPersistence" in example.source for example in PAGES[page])


@pytest.fixture(scope="module")
def docs_moto() -> Iterator[moto_server.MotoServer]:
    """A moto server for the docs alone, so that resetting it between pages touches no
    other test's tables."""
    server = moto_server.start()
    yield server
    server.stop()
    if server.process.stdout is not None:
        server.process.stdout.close()


def test_every_page_with_code_is_collected() -> None:
    assert "README.md" in PAGES
    assert "docs/getting-started.md" in PAGES
    assert sum(len(examples) for examples in PAGES.values()) >= 20


@pytest.mark.parametrize(
    "page",
    [
        pytest.param(page, marks=[pytest.mark.moto] if _uses_dynamodb(page) else [])
        for page in sorted(PAGES)
    ],
)
def test_examples_run(
    page: str,
    eval_example: EvalExample,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    examples = PAGES[page]
    eval_example.set_config(line_length=100)
    endpoint = LOCAL_ENDPOINT
    if _uses_dynamodb(page):
        server: moto_server.MotoServer = request.getfixturevalue("docs_moto")
        server.reset()
        endpoint = server.endpoint_url
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.chdir(tmp_path)  # a block that writes a file writes it here
    main_module = sys.modules["__main__"]  # pytest-examples runs each block as __main__
    try:
        for original in examples:
            example = dataclasses.replace(
                original, source=original.source.replace(LOCAL_ENDPOINT, endpoint)
            )
            # Each block alone, in a namespace of its own: a reader copies one block, so
            # none may rely on the names of the blocks above it.
            if eval_example.update_examples:
                eval_example.run_print_update(example, module_globals={})
                example.source = example.source.replace(endpoint, LOCAL_ENDPOINT)
            else:
                eval_example.run_print_check(example, module_globals={})
    finally:
        sys.modules["__main__"] = main_module


# -- the site builds, and its links resolve ------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("mkdocs")
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr}"
    return out


def test_expected_pages_exist(site: Path) -> None:
    missing = [page for page in EXPECTED_PAGES.values() if not (site / page).is_file()]
    assert not missing, f"pages missing from the built site: {missing}"
    for source in EXPECTED_PAGES:
        assert (DOCS / source).is_file(), source


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(str(values["id"]))
        if tag == "a" and values.get("name"):
            self.ids.add(str(values["name"]))
        for name in ("href", "src"):
            link = values.get(name)
            if link and tag in ("a", "img", "script", "link"):
                self.links.append(link)


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text("utf-8"))
    return parser


def test_internal_links_resolve(site: Path) -> None:
    parsed = {path: _parse(path) for path in site.rglob("*.html")}
    broken = []
    for page, links in parsed.items():
        for link in links.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("mailto:", "javascript:")):
                continue
            if page.name == "404.html":  # served at any depth: its links are absolute
                continue
            target = page if not parts.path else (page.parent / unquote(parts.path))
            if parts.path.endswith("/") or target.is_dir():
                target = target / "index.html"
            target = target.resolve()
            if not target.exists():
                broken.append(f"{page.relative_to(site)}: {link}")
                continue
            if parts.fragment and target.suffix == ".html":
                ids = parsed[target].ids if target in parsed else _parse(target).ids
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{page.relative_to(site)}: {link} (no such anchor)")
    assert not broken, "broken internal links:\n" + "\n".join(sorted(set(broken)))


def test_changelog_is_included(site: Path) -> None:
    changelog = (site / "changelog" / "index.html").read_text("utf-8")
    first_entry = next(
        line.removeprefix("- ").strip()
        for line in (ROOT / "CHANGELOG.md").read_text("utf-8").splitlines()
        if line.startswith("- ")
    )
    assert first_entry.split("`")[0][:20] in changelog


def test_api_reference_documents_every_public_name() -> None:
    import enrollkit

    reference = "\n".join(path.read_text("utf-8") for path in (DOCS / "reference").glob("*.md"))
    documented = set(re.findall(r"^::: enrollkit\.(\w+)\s*$", reference, flags=re.M))
    missing = sorted(set(enrollkit.__all__) - documented)
    assert not missing, f"public names missing from docs/reference: {missing}"


def test_nav_lists_every_page() -> None:
    nav = (ROOT / "mkdocs.yml").read_text("utf-8")
    pages = sorted(str(path.relative_to(DOCS)) for path in DOCS.rglob("*.md"))
    unlisted = [page for page in pages if page not in nav]
    assert not unlisted, f"pages not in mkdocs.yml's nav: {unlisted}"


def test_readme_commands_use_the_venv() -> None:
    """The README's commands run the project's own tools (``.venv/bin/...``), the docs
    command too, never whatever ``mkdocs`` or ``pip`` happens to be on the PATH."""
    readme = (ROOT / "README.md").read_text("utf-8")
    commands = re.findall(r"(?<![\w/.-])(mkdocs|pip) (?:serve|build|install)", readme)
    assert "mkdocs serve" in readme
    assert not commands, f"bare commands in README.md: {commands}"


def test_code_blocks_wrap_instead_of_being_cut(site: Path) -> None:
    """At 1280 px a long code line wraps (the stylesheet), it is not clipped."""
    css = (DOCS / "stylesheets" / "extra.css").read_text("utf-8")
    assert re.search(r"pre > code\s*\{[^}]*white-space:\s*pre-wrap", css)
    page = (site / "how-to" / "embed" / "index.html").read_text("utf-8")
    assert "stylesheets/extra.css" in page
