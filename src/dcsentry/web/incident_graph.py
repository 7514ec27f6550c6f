"""An incident's entities as a small graph: server-rendered SVG, no script, no CDN.

Three columns read left to right as the attack went: the source hosts, the accounts that acted, and
what they acted on (accounts, hosts, DCs). An edge is labelled with the alert type that joins the two.
"""

from __future__ import annotations

from html import escape

from markupsafe import Markup

COL_X = (20, 340, 660)
NODE_W, NODE_H, ROW = 200, 26, 36
MAX_ROWS = 14


def _column(e: dict) -> int:
    roles = set(e.get("roles", []))
    if "source" in roles:
        return 0
    if "actor" in roles:
        return 1
    return 2


def incident_svg(incident: dict) -> Markup:
    ents = incident.get("entities", [])
    cols: list[list[dict]] = [[], [], []]
    for e in ents:
        cols[_column(e)].append(e)
    pos: dict[str, tuple[int, int]] = {}
    hidden = [0, 0, 0]
    for c, items in enumerate(cols):
        items.sort(key=lambda e: (("dc" in e.get("roles", [])), e["kind"], e["name"]))
        for r, e in enumerate(items):
            if r >= MAX_ROWS:
                hidden[c] += 1
                continue
            pos[f"{e['kind']}:{e['name']}"] = (COL_X[c], 30 + r * ROW)
    rows = max([min(len(c), MAX_ROWS) + (1 if h else 0) for c, h in zip(cols, hidden)] + [1])
    height = 40 + rows * ROW
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" class="incident-graph" id="incident-graph" '
            f'viewBox="0 0 880 {height}" width="880" height="{height}" role="img" '
            f'aria-label="Entities of the incident and who touched what">'),
           ('<text x="20" y="16" class="hd">source hosts</text><text x="340" y="16" class="hd">acting accounts</text>'
            '<text x="660" y="16" class="hd">targets and DCs</text>')]
    labelled: set[tuple[str, str]] = set()  # one label per (from, alert type): fan-outs stay readable
    for edge in incident.get("edges", []):
        a, b = pos.get(edge["from"]), pos.get(edge["to"])
        if a is None or b is None:
            continue
        x1, y1 = a[0] + NODE_W, a[1] + NODE_H // 2
        x2, y2 = b[0], b[1] + NODE_H // 2
        if b[0] <= a[0]:  # same column or backwards: from the right edge to the right edge
            x2 = b[0] + NODE_W
        label = "" if edge["type"] == "from" or (edge["from"], edge["type"]) in labelled else escape(edge["type"])
        labelled.add((edge["from"], edge["type"]))
        out.append(f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" class="edge" data-type="{escape(edge["type"])}"/>')
        if label:
            out.append(f'<text x="{x1 + 6}" y="{y1 - 4}" class="el">{label}</text>')
    for e in ents:
        key = f"{e['kind']}:{e['name']}"
        if key not in pos:
            continue
        x, y = pos[key]
        roles = " ".join(e.get("roles", []))
        cls = "dc" if "dc" in e.get("roles", []) and len(e.get("roles", [])) == 1 else e["kind"]
        also = ", ".join(e.get("seen_as", []))
        title = escape(f"{e['kind']} {e['name']} ({roles})" + (f" also seen as {also}" if also else ""))
        out.append(f'<g class="node {cls}" data-name="{escape(e["name"])}"><title>{title}</title>'
                   f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="5"/>'
                   f'<text x="{x + 8}" y="{y + 17}">{escape(e["name"][:26])}</text></g>')
    for c, h in enumerate(hidden):
        if h:
            out.append(f'<text x="{COL_X[c] + 8}" y="{30 + MAX_ROWS * ROW + 17}" class="more">+{h} more</text>')
    out.append("</svg>")
    return Markup("".join(out))
