"""Failure codes of authentication events -> one vocabulary of results.

NTSTATUS values (4776, 4625) and Kerberos error codes (4768, 4771), from
../shared/reference/events.md.
"""

from __future__ import annotations

NTSTATUS = {
    0x0: "success",
    0xC0000064: "no-such-user",
    0xC000006A: "wrong-password",
    0xC000006D: "bad-credentials",
    0xC000006F: "outside-logon-hours",
    0xC0000070: "workstation-restricted",
    0xC0000071: "password-expired",
    0xC0000072: "disabled",
    0xC0000193: "account-expired",
    0xC0000224: "must-change-password",
    0xC0000234: "locked",
    0xC0000371: "no-secret",
    0xC0000133: "clock-skew",
    0xC000015B: "logon-type-not-granted",
}

KERBEROS = {
    0x0: "success",
    0x6: "no-such-user",
    0x12: "revoked",  # disabled, expired or locked out
    0x17: "password-expired",
    0x18: "wrong-password",
    0x25: "clock-skew",
}

# Results that prove the password was right (the account is then "guessed").
PASSWORD_RIGHT = frozenset({"success", "password-expired", "must-change-password", "outside-logon-hours",
                            "workstation-restricted", "account-expired", "disabled"})
# Results that prove the account exists.
ACCOUNT_EXISTS = frozenset(r for r in (*NTSTATUS.values(), *KERBEROS.values()) if r != "no-such-user")


def _code(text: str) -> int | None:
    text = (text or "").strip()
    if not text or text == "-":
        return None
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        return None


def ntstatus_result(status: str, sub_status: str = "") -> str:
    """4625 carries a generic Status with the reason in SubStatus."""
    code = _code(status)
    sub = _code(sub_status)
    if sub not in (None, 0) and code in (0xC000006D, 0xC000006E, None):
        code = sub
    if code is None:
        return "other"
    return NTSTATUS.get(code, "other")


def kerberos_result(status: str) -> str:
    code = _code(status)
    return "other" if code is None else KERBEROS.get(code, "other")
