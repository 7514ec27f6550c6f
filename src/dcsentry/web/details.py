"""An alert's `details` for people: every value, however nested, as tables and lists (never a
Python repr), with views of their own for the keys responders read most: the accounts tried,
attempts per account, what a directory change wrote (before and after), service tickets asked for.

`render_details` turns the JSON into a small tree of typed nodes the template draws recursively:
a list of objects becomes a table with one column per key, an object a two-column table, a list
of words a list, a scalar text (yes/no for booleans)."""

from __future__ import annotations

from typing import Any

ACCOUNT_LISTS = {"guessed_accounts": "Accounts guessed", "unknown_names": "Names tried that do not exist",
                 "existing_names": "Names tried that exist", "requesters": "Requested by",
                 "subjects": "Done by", "attacked_accounts": "Accounts attacked"}
COUNTS = {"per_account": ("Attempts per account", "Account", "Attempts")}
MAPS = {"services": ("Service tickets", "Service", "Encryption"), "etypes": ("Tickets without pre-authentication",
                                                                            "Account", "Encryption")}
LABELS = {"why": "Why it matters", "rules": "Rules that matched", "trustees": "Given to", "blind": "Blind until fixed",
          "removed": "Audit settings removed", "steps": "Steps seen", "chain": "Chain of events",
          "session": "Logon session",
          "access_4662": "The access (4662)", "logon_ids": "Logon ids", "rights": "Rights used", "mdi_id": "MDI id",
          "sigma": "Sigma rule", "fields": "Event fields", "subcategory_guids": "Subcategory GUIDs"}
CHANGE_KEYS = ("written", "old", "new")


def label(key: str) -> str:
    return LABELS.get(key) or key.replace("_", " ").strip().capitalize()


def node(v: Any) -> dict:
    """One value as a typed node for the template (depth-first; JSON only, so no cycles)."""
    if isinstance(v, dict):
        return {"t": "dict", "items": [(label(str(k)), node(x)) for k, x in v.items()]}
    if isinstance(v, (list, tuple)):
        if v and all(isinstance(x, dict) for x in v):
            cols: list[str] = []
            for x in v:
                cols += [str(k) for k in x if str(k) not in cols]
            return {"t": "table", "cols": [label(c) for c in cols],
                    "rows": [[node(x.get(c)) for c in cols] for x in v]}
        items = [node(x) for x in v]
        chips = len(items) > 3 and all(i["t"] == "text" and len(i["v"]) <= 60 for i in items)
        return {"t": "list", "items": items, "chips": chips}
    if isinstance(v, bool):
        return {"t": "text", "v": "yes" if v else "no"}
    if v is None:
        return {"t": "text", "v": "—"}
    return {"t": "text", "v": str(v), "long": len(str(v)) > 120}


def render_details(details: dict[str, Any] | None) -> dict:
    """{"facts": [(label, text)], "blocks": [...]}: the scalars as one list of facts, then one block
    per structured key (a special view where the key has one, else the generic node tree)."""
    d = dict(details or {})
    facts: list[tuple[str, dict]] = []
    blocks: list[dict] = []
    if any(isinstance(d.get(k), list) for k in CHANGE_KEYS):
        written, old, new = (d.pop(k, None) for k in CHANGE_KEYS)
        pairs = list(zip(old, new)) if isinstance(old, list) and isinstance(new, list) and len(old) == len(new) else []
        rows = [_split_change(w) for w in _strings(written)]
        blocks.append({"view": "changes", "label": "What changed", "written": rows, "verbs": any(v for v, _ in rows),
                       "pairs": pairs,
                       "old": [] if pairs else _strings(old), "new": [] if pairs else _strings(new)})
    for key, v in d.items():
        if key in COUNTS and isinstance(v, dict):
            title, a, b = COUNTS[key]
            rows = sorted(((str(k), n) for k, n in v.items()), key=lambda kv: (-_int(kv[1]), kv[0]))
            blocks.append({"view": "counts", "label": title, "cols": (a, b), "rows": rows,
                           "peak": max((_int(n) for _, n in rows), default=0) or 1})
        elif key in ACCOUNT_LISTS and isinstance(v, list):
            blocks.append({"view": "accounts", "label": ACCOUNT_LISTS[key], "names": _strings(v)})
        elif key in MAPS and isinstance(v, dict):
            title, a, b = MAPS[key]
            blocks.append({"view": "map", "label": title, "cols": (a, b),
                           "rows": [(str(k), node(x)) for k, x in v.items()]})
        elif isinstance(v, (dict, list)):
            blocks.append({"view": "node", "label": label(key), "node": node(v)})
        else:
            facts.append((label(key), node(v)))
    return {"facts": facts, "blocks": blocks}


def _split_change(w: str) -> tuple[str, str]:
    """("added", "Allow ...") from the 5136 engine's "added: Allow ..."; ("", text) for the rest."""
    verb, sep, rest = w.partition(": ")
    return (verb, rest) if sep and verb in ("added", "removed", "set", "cleared") else ("", w)


def _strings(v: Any) -> list[str]:
    if v is None:
        return []
    return [str(x) for x in v] if isinstance(v, list) else [str(v)]


def _int(v: Any) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return 0
