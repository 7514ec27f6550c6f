"""What makes a service look malicious: scored indicators on the image path and name.

These are dcsentry's own heuristics (Defender for Identity publishes none; reference/alerts.md
section 5), each named so the alert can say why. Known-good update mechanisms are scored zero.
"""

from __future__ import annotations

import functools
import re

# (name, score, pattern on the image path)
IMAGE_INDICATORS: tuple[tuple[str, int, re.Pattern[str]], ...] = tuple(
    (n, s, re.compile(p, re.I)) for n, s, p in (
        ("command shell runs a command", 3, r"(%comspec%|\bcmd(\.exe)?\"?\s+/[a-z]*[ck]\b)"),
        ("service binary is a command interpreter", 3,
         r"^\"?(?:[a-z]:\\windows\\system32\\|%systemroot%\\system32\\)?(cmd|powershell|pwsh|wscript|cscript|mshta)(\.exe)?\"?$"),
        ("PowerShell with hidden/encoded/no-profile options", 3,
         r"powershell.*\s-(e|ec|enc|encodedcommand|nop|noprofile|w(indowstyle)?\s+hidden|noni)\b"),
        ("PowerShell download or inline script", 3, r"(iex|invoke-expression|downloadstring|frombase64string)"),
        ("named pipe echo (getsystem / impersonation)", 3, r"echo\s+\S+\s*>\s*\\\\\.\\pipe\\"),
        ("runs from an admin share or loopback UNC path", 3,
         r"(\\\\(127\.0\.0\.1|localhost)\\|\\admin\$\\|\\c\$\\__output)"),
        ("living-off-the-land binary", 3,
         r"\b(rundll32|regsvr32|mshta|certutil|bitsadmin|msbuild|installutil)(\.exe)?\b"
         r".*(http|javascript|/i:|-urlcache|\\temp\\|\.js|\.sct)"),
        ("runs from a temporary folder", 3, r"\\(windows\\temp|appdata\\local\\temp|temp)\\"),
        ("runs from a user profile or public folder", 2,
         r"\\(users|documents and settings)\\|\\perflogs\\|\\programdata\\[^\\]+\.exe"),
        ("interactive program as a service", 3,
         r"^\"?([a-z]:\\windows\\system32\\)?(calc|notepad|mspaint)(\.exe)?\"?$"),
        ("binary directly in the Windows folder", 2, r"^(%systemroot%|%windir%|[a-z]:\\windows)\\[a-z0-9]{5,}\.exe$"),
        ("long base64 blob in the command line", 3, r"[A-Za-z0-9+/]{60,}={0,2}"),
        ("binary on a non-system drive", 1, r"^\"?[d-z]:\\"),
    ))

# Known offensive tools by service name or image file name.
TOOLS = re.compile(r"\b(mimidrv|mimikatz|wceservice|wce(\.exe)?|gsecdump|pwdump|fgdump|cachedump|"
                   r"psexesvc|paexec|remcom(svc)?|csexecsvc|winexesvc|btobto|kerbrute|rubeus|sharphound)\b", re.I)
# Remote execution tools (also raise remote-code-execution).
REMOTE_EXEC = re.compile(r"(psexesvc|paexec|remcom|csexecsvc|winexesvc|btobto|\\\\127\.0\.0\.1\\|__output|"
                         r"%comspec%\s+/q\s+/c\s+echo)", re.I)
# Update and driver mechanisms that install oddly named services every day. Only a whole image path
# that is a plain driver file there qualifies: a command line merely naming such a folder does not.
KNOWN_GOOD = re.compile(r"\"?(?:[a-z]:\\programdata\\microsoft\\windows defender\\definition updates\\|"
                        r"\\systemroot\\system32\\drivers\\|system32\\drivers\\|\\\?\?\\c:\\windows\\system32\\drivers\\)"
                        r"(?:(?!\.\.)[^\"%&|<>^\r\n])*\.sys\"?", re.I)
_CONSONANTS = re.compile(r"[bcdfghjklmnpqrstvwxz]{5,}", re.I)


def random_looking(name: str) -> bool:
    """A machine-made name (e.g. Metasploit's `KgXItsbKgTJzdzwl`): mixed case, unpronounceable."""
    if not re.fullmatch(r"[A-Za-z0-9]{8,40}", name):
        return False
    switches = sum(1 for a, b in zip(name, name[1:]) if a.islower() and b.isupper())
    return switches >= 2 and bool(_CONSONANTS.search(name))


def score(name: str, image: str) -> tuple[int, list[str]]:
    """Total score and the reasons, for a service `name` running `image`."""
    total, reasons = _score(name, image)
    return total, list(reasons)


@functools.lru_cache(maxsize=4096)
def remote_exec(name: str, image: str) -> bool:
    """A remote-execution tool's service (PsExec, smbexec...); memoised as `_score` is."""
    return bool(REMOTE_EXEC.search(name) or REMOTE_EXEC.search(image))


@functools.lru_cache(maxsize=4096)
def _score(name: str, image: str) -> tuple[int, tuple[str, ...]]:
    """Memoised: the same services are installed again and again (updates, remote-admin tools), and
    the patterns run over command lines of kilobytes (a repeated corpus spent 4 % of `hunt` here)."""
    image = (image or "").strip()
    if KNOWN_GOOD.fullmatch(image) and not TOOLS.search(name + " " + image):
        return 0, ()
    reasons: list[str] = []
    total = 0
    for why, s, pat in IMAGE_INDICATORS:
        if pat.search(image):
            reasons.append(why)
            total += s
    if TOOLS.search(name) or TOOLS.search(image):
        reasons.append("known offensive or remote-execution tool")
        total += 3
    if random_looking(name):
        reasons.append("random-looking service name")
        total += 2
    return total, tuple(reasons)
