"""`gateway/schema.graphql` is the schema the code builds: clients and reviewers
read the file, so it must not drift from `gateway.schema.sdl()`."""

from __future__ import annotations

import difflib

from gateway.schema import SCHEMA_FILE, sdl


def drift(written: str, built: str) -> str | None:
    """None if the file is up to date, else what to do and what differs."""
    if written == built:
        return None
    diff = difflib.unified_diff(
        written.splitlines(),
        built.splitlines(),
        fromfile="gateway/schema.graphql",
        tofile="gateway.schema.sdl()",
        lineterm="",
        n=1,
    )
    shown = "\n".join(list(diff)[:60])
    return (
        "gateway/schema.graphql is out of date with the code: run `make schema` "
        f"and commit the result.\n{shown}"
    )


def test_schema_file_is_the_schema_the_code_builds() -> None:
    message = drift(SCHEMA_FILE.read_text(encoding="utf-8"), sdl())
    assert message is None, message


def test_a_drift_says_how_to_fix_it() -> None:
    built = sdl()
    assert "type Member implements Node" in built
    message = drift(
        built.replace("type Member implements Node", "type Membre implements Node"), built
    )
    assert message is not None
    assert "run `make schema`" in message
    assert "-type Membre implements Node {" in message
    assert "+type Member implements Node {" in message
