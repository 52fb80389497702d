"""Which characters a diagram shows escaped, and how: ``visible`` (used by ``style.esc``)."""

from __future__ import annotations

import re
import unicodedata

# Characters that must never reach the DOT or SVG text as themselves: control
# characters (C0, C1: invalid XML, or new lines that split an id in two),
# format characters (bidirectional overrides and isolates, zero-width
# characters, the BOM, soft hyphens, tags), lone surrogates, line and paragraph
# separators and noncharacters. Each is shown as a visible escape (``\u202e``),
# so two ids that differ only by one never draw the same.
_NOT_PLAIN = re.compile(r"[^\x20-\x7e]")


def unsafe_char(ch: str) -> bool:
    """Whether ``ch`` is shown escaped rather than as itself (see above)."""
    cp = ord(ch)
    if cp < 0x20 or 0x7F <= cp < 0xA0:
        return True
    if 0xFDD0 <= cp <= 0xFDEF or cp & 0xFFFE == 0xFFFE:
        return True
    if any(lo <= cp <= hi for lo, hi in _IGNORABLE):
        return True
    return unicodedata.category(ch) in ("Cf", "Cs", "Zl", "Zp")


#: Unicode's default-ignorable code points outside the format category: drawn as nothing
#: (Hangul fillers, Khmer inherent vowels, Mongolian variation selectors, variation selectors,
#: the combining grapheme joiner), so two ids differing by one would look the same.
_IGNORABLE = (
    (0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0x1BCA0, 0x1BCA3), (0xE0100, 0xE01EF),
)  # fmt: skip


def visible(text: str) -> str:
    """``text`` with every unsafe character replaced by a visible escape: ``\\x0a``, ``\\u202e``, ``\\U000e0041``."""
    if text.isascii() and text.isprintable():
        return text

    def one(m: re.Match[str]) -> str:
        ch = m[0]
        if not unsafe_char(ch):
            return ch
        cp = ord(ch)
        return f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}" if cp < 0x10000 else f"\\U{cp:08x}"

    return _NOT_PLAIN.sub(one, text)
