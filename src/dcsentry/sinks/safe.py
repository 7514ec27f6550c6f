"""Text derived from events, made safe for where it goes.

Account names, service paths and every other event field are attacker-controlled: an account
named ``ESC]0;...BEL ESC[2J ALL CLEAR`` must not clear an operator's screen or forge a line, and
a NUL, a C1 control or U+2028 must not split or corrupt a CEF/syslog record downstream. Such
characters are shown as visible escapes (``\\x1b``, ``\\u2028``), never passed on raw.
"""

from __future__ import annotations

import re

# C0 controls but TAB/LF, DEL, C1 controls, line/paragraph separators and the bidi overrides and
# isolates (which can make a terminal line read differently from its bytes: "Trojan Source").
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_UNSAFE_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group(0))
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def visible(text: str, *, one_line: bool = False) -> str:
    """`text` with every control character shown as an escape; TAB and LF kept unless `one_line`."""
    return (_UNSAFE_ONE_LINE if one_line else _UNSAFE).sub(_escape, text)
