"""The matrix report: a Markdown page (a summary per kernel, then the probes and the tests
whose result differs between kernels, with the reasons) and a self-contained HTML page (the
same summary and every probe and test as a colour-coded kernel grid, details on hover)."""

import html as _html

COLOURS = {"present": "#2e7d32", "passed": "#2e7d32", "absent": "#9e9e9e",
           "skipped": "#9e9e9e", "xfailed": "#f9a825", "xpassed": "#ef6c00",
           "error": "#c62828", "failed": "#c62828", "missing": "#ffffff",
           "unprivileged": "#6d4c41"}
DARK_TEXT = ("xfailed", "missing")


def _kernels(data):
    return [row["kernel"] for row in data["kernels"]]


def _grid(data, part, key):
    """{name: {kernel: (status, why)}} of the probes (part "probes", key "results") or the
    tests (part "suite", key "tests")."""
    grid = {}
    for row in data["kernels"]:
        for name, cell in ((row.get(part) or {}).get(key) or {}).items():
            status = cell.get("status") or cell.get("result")
            why = cell.get("detail") or cell.get("reason") or ""
            grid.setdefault(name, {})[row["kernel"]] = (status, why)
    return grid


def _differing(grid, kernels):
    return {name: cells for name, cells in grid.items()
            if len({cells.get(k, ("missing", ""))[0] for k in kernels}) > 1}


def _seconds(value):
    return "-" if value is None else f"{value:.1f}"


def _summary_rows(data):
    rows = []
    for row in data["kernels"]:
        probes, suite = row.get("probes") or {}, row.get("suite") or {}
        summary = probes.get("summary") or {}
        totals = suite.get("totals") or {}
        rows.append([
            row["kernel"], row["release"], row.get("accel", "-"),
            _seconds(probes.get("boot_seconds")), _seconds(probes.get("total_seconds")),
            probes.get("status", "-") if probes.get("status") != "ok" else
            f"{summary.get('present', 0)} / {summary.get('absent', 0)} / "
            f"{summary.get('error', 0)}",
            _seconds(suite.get("seconds")) if suite else "-",
            (f"{totals.get('passed', 0)} / {totals.get('failed', 0) + totals.get('error', 0)}"
             f" / {totals.get('skipped', 0)} / {totals.get('xfailed', 0)}") if totals else
            (suite.get("status", "-") if suite else "not run"),
            str(len(probes.get("warnings") or []) + len(suite.get("warnings") or [])),
        ])
    return rows


SUMMARY_HEAD = ["kernel", "release", "accel", "boot s", "probes s",
                "probes present / absent / error", "suite s",
                "tests passed / failed / skipped / xfailed", "kernel warnings"]


def markdown(data):
    kernels = _kernels(data)
    out = ["# crbench kernel matrix", "", _md_table(SUMMARY_HEAD, _summary_rows(data)), ""]
    for part, key, title in (("probes", "results", "Probes"), ("suite", "tests", "Tests")):
        grid = _grid(data, part, key)
        if not grid:
            continue
        diff = _differing(grid, kernels)
        out += [f"## {title} that differ between kernels ({len(diff)} of {len(grid)})", ""]
        if diff:
            rows = [[f"`{name}`"] + [cells.get(k, ("-", ""))[0] for k in kernels]
                    for name, cells in sorted(diff.items())]
            out += [_md_table([title[:-1].lower()] + kernels, rows), ""]
            reasons = [f"- `{name}` on {k}: {cells[k][1]}"
                       for name, cells in sorted(diff.items()) for k in kernels
                       if k in cells and cells[k][1] and cells[k][0] not in ("present", "passed")]
            if reasons:
                out += ["Why:", ""] + reasons + [""]
    warnings = [(row["kernel"], w) for row in data["kernels"]
                for part in ("probes", "suite") for w in (row.get(part) or {}).get("warnings", [])]
    if warnings:
        out += ["## Kernel warnings", ""] + [f"- {k}: `{w}`" for k, w in warnings] + [""]
    return "\n".join(out)


def _md_table(head, rows):
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def html(data):
    kernels = _kernels(data)
    e = _html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>crbench kernel matrix"
             "</title><style>body{font:14px sans-serif;margin:1.5em}table{border-collapse:"
             "collapse;margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:2px 6px}"
             "td.c{color:#fff;text-align:center;min-width:5em}th{background:#eee}"
             "tr.same{display:none}body.all tr.same{display:table-row}"
             ".legend span{padding:2px 6px;margin-right:4px;color:#fff}</style></head>"
             "<body><h1>crbench kernel matrix</h1>"]
    parts.append(_html_table(SUMMARY_HEAD, _summary_rows(data)))
    parts.append("<p class='legend'>" + "".join(
        f"<span style='background:{COLOURS[s]};color:{'#000' if s in DARK_TEXT else '#fff'}'"
        f">{s}</span>" for s in ("present", "absent", "error", "passed", "failed", "skipped",
                                 "xfailed")) +
        " <label><input type='checkbox' onclick=\"document.body.classList.toggle('all')\">"
        " show the rows that are the same on every kernel</label></p>")
    for part, key, title in (("probes", "results", "Probes"), ("suite", "tests", "Tests")):
        grid = _grid(data, part, key)
        if not grid:
            continue
        diff = _differing(grid, kernels)
        parts.append(f"<h2>{title}: {len(diff)} of {len(grid)} differ between kernels</h2>")
        parts.append("<table><tr><th>" + e(title[:-1].lower()) + "</th>" +
                     "".join(f"<th>{e(k)}</th>" for k in kernels) + "</tr>")
        for name in sorted(grid):
            cells = grid[name]
            parts.append(f"<tr class='{'diff' if name in diff else 'same'}'><td>{e(name)}</td>")
            for k in kernels:
                status, why = cells.get(k, ("missing", ""))
                colour = COLOURS.get(status, "#000")
                text = "#000" if status in DARK_TEXT else "#fff"
                parts.append(f"<td class='c' style='background:{colour};color:{text}' "
                             f"title='{e(why, quote=True)}'>{e(status)}</td>")
            parts.append("</tr>")
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "".join(parts)


def _html_table(head, rows):
    e = _html.escape
    return ("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>" +
            "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>"
                    for row in rows) + "</table>")
