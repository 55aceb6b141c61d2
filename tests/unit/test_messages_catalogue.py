"""Refusals in the requester's language: every message a person may read is
written with `t()` and translated in its package's catalogue
(`<package>/locale/fr.po`, kept in step with the code by `make messages`),
placeholders alike (docs/api.md, "Errors")."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import msgspec
import polib
import pytest

from infra.messages import ROOT, fields, packages, sources, templates
from services.runtime import errors, i18n
from services.runtime.i18n import Text, accepted_locale, t, translate
from services.runtime.messages import ErrorInfo

ERROR_CLASSES = {
    name
    for name, value in vars(errors).items()
    if isinstance(value, type) and issubclass(value, errors.QuartierError)
} - {"QuartierError", "InternalError"}


def test_every_refusal_is_written_to_be_translated() -> None:
    """`NotFound("…")` with a literal or an f-string (raised, returned or
    kept) would reach a French console in English: each typed error's
    message is a `t()` (or a value that holds one)."""
    untranslatable = []
    for package in packages():
        for path in sources(package):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not isinstance(node, ast.Call):
                    continue  # raised, returned or kept: every error made
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name not in ERROR_CLASSES or not node.args:
                    continue
                if isinstance(node.args[0], ast.Constant | ast.JoinedStr):
                    untranslatable.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert untranslatable == []


@pytest.mark.parametrize("package", packages(), ids=lambda p: p.name)
def test_each_template_is_translated_in_french(package: Path) -> None:
    written = templates(package)
    po = package / "locale" / "fr.po"
    if not written:
        assert not po.exists() or not polib.pofile(str(po)), f"{po} translates nothing written"
        return
    assert po.exists(), f"{package.name} writes {len(written)} messages but has no locale/fr.po"
    entries = {e.msgid: e for e in polib.pofile(str(po)) if not e.obsolete}
    missing = {m: where for m, where in written.items() if m not in entries}
    assert missing == {}, "untranslated"
    stale = sorted(set(entries) - set(written))
    assert stale == [], "translations of templates no longer written"
    for msgid, entry in entries.items():
        assert entry.msgstr.strip(), f"empty translation of {msgid!r}"
        assert "fuzzy" not in entry.flags, f"fuzzy translation of {msgid!r}"
        assert fields(entry.msgstr) == fields(msgid), f"placeholders differ in {msgid!r}"


def test_a_template_shared_by_packages_is_translated_alike() -> None:
    seen: dict[str, set[str]] = defaultdict(set)
    for path in i18n.catalogue_files("fr"):
        for entry in polib.pofile(str(path)):
            seen[entry.msgid].add(entry.msgstr)
    assert {m: s for m, s in seen.items() if len(s) > 1} == {}


def test_a_message_is_said_in_the_language_asked_for() -> None:
    fr = i18n.catalogue("fr")
    template = next(iter(fr))
    params = {name: "X" for name in fields(template)}
    message = t(template, **params)
    assert isinstance(message, Text) and str(message) == template.format(**params)
    assert translate(message, "fr") == fr[template].format(**params)
    assert translate(message, "en") == str(message)
    assert translate("a plain string", "fr") == "a plain string"  # not a Text: as written
    assert translate(t("a template no catalogue has"), "fr") == "a template no catalogue has"


def test_a_refusal_crosses_the_bus_in_every_language() -> None:
    fr = i18n.catalogue("fr")
    template = next(iter(fr))
    params = {name: "7" for name in fields(template)}
    error = errors.RuleViolation(t(template, **params), rule="r")
    info = ErrorInfo(
        code=error.code,
        message=error.message,
        rule=error.rule,
        translations=error.all_translations(),
    )
    back = msgspec.msgpack.decode(msgspec.msgpack.encode(info), type=ErrorInfo)
    again = errors.error_from_code(
        back.code, back.message, None, back.rule, None, back.translations
    )
    assert again.message_in("fr") == fr[template].format(**params)
    assert again.message_in("en") == template.format(**params)
    assert info.translations is not None


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        (None, "en"),
        ("", "en"),
        ("fr", "fr"),
        ("fr-FR,fr;q=0.9,en;q=0.8", "fr"),
        ("en-GB,fr;q=0.5", "en"),
        ("de,fr;q=0.3", "fr"),
        ("de", "en"),
        ("fr;q=0", "en"),
        ("fr;q=zz,en", "en"),
        ("en;q=0.2, fr;q=0.9", "fr"),
        ("x" * 10_000, "en"),
    ],
)
def test_accept_language_picks_a_supported_language(header: str | None, locale: str) -> None:
    assert accepted_locale(header) == locale
