"""The one text policy for every text input of every service.

Two layers:

* **Every string of every request** (`clean_request`, run by the bus on each
  request a service receives, before its handler sees it): normalised to
  Unicode NFC (so that "é" typed decomposed or composed is one value, one
  e-mail address, one name), and refused if it holds a control character (C0
  or C1; tab and line feed are allowed, a CR LF or lone CR becomes a line
  feed), a bidirectional override or isolate (U+202A to U+202E, U+2066 to U+2069),
  a lone surrogate or a noncharacter, or more than `MAX_TEXT` characters.
  A service never stores what this refuses: PostgreSQL refuses NUL in text,
  and one such value must not stop a projection for every tenant.
* **Each field** (`single_line`, `free_text`, in the domain): whitespace
  folded, a size bound, and for required fields at least one visible
  character (a name of only U+200B ZERO WIDTH SPACE is empty).

Errors are `InvalidInput` naming the field.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, TypeVar

import msgspec

from services.runtime.errors import InvalidInput
from services.runtime.i18n import t

MAX_TEXT = 20_000  # characters in any one string of a request; fields set their own, lower
_FORBIDDEN = re.compile(
    "["
    "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"  # C0 (but tab, line feed; CR is rewritten) and C1
    "\u202a-\u202e\u2066-\u2069"  # bidirectional embeddings, overrides and isolates
    "\ud800-\udfff"  # lone surrogates (JSON lets a client send one)
    "\ufdd0-\ufdef\ufffe\uffff"  # noncharacters
    "]"
)
S = TypeVar("S")


def _label(field: str) -> str:
    return field.rsplit(".", 1)[-1].replace("_", " ")


def check_text(value: str, field: str) -> str:
    """The request-wide policy for one string: NFC, no forbidden characters,
    at most MAX_TEXT characters. Returns the normalised string."""
    if len(value) > MAX_TEXT:
        raise InvalidInput(t("{label} is too long", label=_label(field)), field=field)
    if "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    found = _FORBIDDEN.search(value)
    if found is not None:
        raise InvalidInput(
            t(
                "{label} contains a character that is not allowed (U+{code})",
                label=_label(field),
                code=f"{ord(found.group()):04X}",
            ),
            field=field,
        )
    return unicodedata.normalize("NFC", value)


def _clean(value: Any, path: str) -> Any:
    if isinstance(value, str):
        return check_text(value, path)
    if isinstance(value, msgspec.Struct):
        changes = {}
        for name in value.__struct_fields__:
            current = getattr(value, name)
            cleaned = _clean(current, f"{path}.{name}" if path else name)
            if cleaned is not current:
                changes[name] = cleaned
        return msgspec.structs.replace(value, **changes) if changes else value
    if isinstance(value, list | tuple):
        items = [_clean(v, path) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return type(value)(items)
    if isinstance(value, dict):
        cleaned = {_clean(k, path): _clean(v, path) for k, v in value.items()}
        same = all(
            ck is k and cv is v
            for (ck, cv), (k, v) in zip(cleaned.items(), value.items(), strict=True)
        )
        return value if same else cleaned
    return value


def clean_request(request: S) -> S:
    """Every string inside a decoded request, through `check_text`; the same
    object when nothing changed. Errors name the field's path."""
    cleaned: S = _clean(request, "")
    return cleaned


def is_visible(value: str) -> bool:
    """Whether `value` has a character that shows: not a space, a control, a
    format character (zero-width spaces and joiners) or unassigned."""
    return any(unicodedata.category(ch)[0] not in "ZC" for ch in value)


def single_line(value: str | None, field: str, max_len: int, *, required: bool = False) -> str:
    """A one-line text (a name, a title, a reason): whitespace runs, line
    breaks included, fold to one space; at most `max_len` characters; if
    `required`, at least one visible character."""
    text = " ".join(check_text(value or "", field).split())
    return _bounded(text, field, max_len, required)


def free_text(value: str | None, field: str, max_len: int, *, required: bool = False) -> str:
    """A text that may hold paragraphs (a bio, a description): line breaks
    kept, trailing spaces and blank runs of more than one empty line dropped."""
    lines = [" ".join(line.split()) for line in check_text(value or "", field).split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return _bounded(text, field, max_len, required)


def _bounded(text: str, field: str, max_len: int, required: bool) -> str:
    if not is_visible(text):
        text = ""  # only spaces or zero-width characters: nothing was said
    if required and not text:
        raise InvalidInput(t("{label} is required", label=_label(field)), field=field)
    if len(text) > max_len:
        raise InvalidInput(
            t("{label} is limited to {limit} characters", label=_label(field), limit=max_len),
            field=field,
        )
    return text
