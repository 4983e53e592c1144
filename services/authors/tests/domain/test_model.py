from datetime import UTC, datetime

import pytest

from gatehouse.authors.domain.errors import InvalidAuthor
from gatehouse.authors.domain.events import AuthorCreated
from gatehouse.authors.domain.model import Author


def test_a_new_author_raises_author_created_with_its_fields() -> None:
    now = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)

    author = Author.create("  Ursula K. Le Guin ", "Earthsea", now=now)

    assert author.name == "Ursula K. Le Guin"
    assert author.version == 1
    assert author.created_at == author.updated_at == now
    assert author.events == [AuthorCreated(author.id, "Ursula K. Le Guin", "Earthsea", now, now, 1)]


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
def test_a_name_must_have_1_to_200_characters(name: str) -> None:
    with pytest.raises(InvalidAuthor, match="name"):
        Author.create(name)


def test_a_bio_longer_than_2000_characters_is_refused_with_a_422() -> None:
    with pytest.raises(InvalidAuthor, match="bio") as caught:
        Author.create("Someone", "b" * 2001)
    assert caught.value.status == 422


def test_the_domain_imports_only_the_standard_library_and_common_errors() -> None:
    import ast
    import sys
    from pathlib import Path

    import gatehouse.authors.domain as domain

    for path in Path(domain.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                allowed = top in sys.stdlib_module_names or name.startswith(
                    ("gatehouse.authors.domain", "gatehouse.common.errors")
                )
                assert allowed, f"{path.name} imports {name}"
