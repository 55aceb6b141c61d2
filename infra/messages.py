"""The message catalogues: every `t("…")` template of a package (the runtime,
each service, the gateway) and its translations in `<package>/locale/fr.po`
(gettext's format, read at run time by `services.runtime.i18n`).

`python -m infra.messages` brings each catalogue up to date with the code:
a new template gets an empty entry to translate (the catalogue test fails
until it is), a template no longer written is dropped, translations are
kept; `make messages` runs it. Translators may edit the `.po` files with any
gettext tool (Poedit, Weblate…).
"""

from __future__ import annotations

import ast
import string
import sys
from pathlib import Path

import polib

ROOT = Path(__file__).resolve().parents[1]
LOCALES = ("fr",)  # every locale but English, the templates' own language
HEADER = {
    "Project-Id-Version": "quartier",
    "MIME-Version": "1.0",
    "Content-Type": "text/plain; charset=UTF-8",
    "Content-Transfer-Encoding": "8bit",
}


def packages() -> list[Path]:
    """The packages that write messages: the runtime, each service, the gateway."""
    services = (p for p in (ROOT / "services").iterdir() if p.is_dir() and p.name[0] != "_")
    return [*sorted(services), ROOT / "gateway"]


def sources(package: Path) -> list[Path]:
    return sorted(package.rglob("*.py"))


def templates(package: Path) -> dict[str, str]:
    """Each `t("…")` template of a package, with the file that first writes
    it. Raises ValueError for a `t()` whose template is not a literal (it
    could not be translated ahead of time)."""
    found: dict[str, str] = {}
    for path in sources(package):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "t"
                and node.args
            ):
                continue
            first = node.args[0]
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                raise ValueError(f"{path.relative_to(ROOT)}:{node.lineno}: t() takes a literal")
            found.setdefault(first.value, str(path.relative_to(ROOT)))
    return found


def fields(template: str) -> set[str]:
    """The names a template fills (`{limit}`, `{limit:,}` → `limit`)."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def catalogue_path(package: Path, locale: str) -> Path:
    return package / "locale" / f"{locale}.po"


def sync(package: Path, locale: str) -> tuple[int, int]:
    """Bring `package`'s catalogue of `locale` up to date with its templates:
    (entries added, entries dropped). No templates: no file."""
    written = templates(package)
    path = catalogue_path(package, locale)
    old = {e.msgid: e for e in polib.pofile(str(path)) if not e.obsolete} if path.exists() else {}
    if not written:
        if path.exists():
            path.unlink()
        return 0, len(old)
    po = polib.POFile(wrapwidth=0)
    po.metadata = {**HEADER, "Language": locale}
    for msgid, where in written.items():
        before = old.get(msgid)
        po.append(
            polib.POEntry(
                msgid=msgid,
                msgstr=before.msgstr if before else "",
                flags=list(before.flags) if before else [],
                occurrences=[(where, "")],
            )
        )
    path.parent.mkdir(exist_ok=True)
    po.save(str(path))
    return len(set(written) - set(old)), len(set(old) - set(written))


def main() -> int:
    for package in packages():
        for locale in LOCALES:
            added, dropped = sync(package, locale)
            if added or dropped:
                where = catalogue_path(package, locale).relative_to(ROOT)
                print(f"{where}: {added} to translate, {dropped} dropped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
