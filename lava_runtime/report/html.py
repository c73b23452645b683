"""Render a run report (plain data from lava_runtime.report) as one self-contained HTML page.

`render_html(page)` is a pure function: `page` is a dict of strings, numbers, lists and PNG
bytes; the result is a str with inline CSS, every figure a base64 `data:image/png` URI, and no
external resource (no link, no remote script or image). An inline script sets, after the
page's load event, `data-images-total` and `data-images-decoded` (images whose naturalWidth > 0)
on <body>, so a headless browser can tell whether every figure rendered.

page keys (all required unless marked optional):
    title: str; subtitle: str
    banner: list of {"title": str, "text": str} (optional)
                                          alerts above everything else (e.g. run unfinished);
                                          `backquoted` parts of text are shown as code
    headline: (optional) {"title": str, "cards": list of {"label": str,
                          "lines": list of [name, value], "detail": str}}
                                          a compact block right under the title,
                                          <section id="headline">, one card per fact
    notes: list[str]                      shown under the headline (e.g. "Lava skipped")
    sections: list of {"title": str, "intro": str (optional),
                       "tables": list of {"caption": str, "header": list[str],
                                          "rows": list[list[str | number | None]],
                                          "note": str (optional)},
                       "figures": list of {"caption": str, "png": bytes}}
Cells are escaped; None shows as "-".
"""
from __future__ import annotations

import base64
import html

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       margin: 2em auto; max-width: 1100px; padding: 0 1em; color: #1b1b1b; background: #fff; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
.subtitle { color: #555; margin-top: 0; }
.note { background: #fff6d6; border-left: 4px solid #e0b000; padding: 0.4em 0.8em; }
.banner { background: #fde8e8; border-left: 5px solid #c00000; padding: 0.5em 0.8em; }
.banner strong { display: block; font-size: 1.1em; color: #900000; margin-bottom: 0.2em; }
.banner code { font-size: 0.85em; background: #fff; padding: 0 0.2em; overflow-wrap: anywhere; }
#headline { display: grid; grid-template-columns: repeat(auto-fit, minmax(240px, 1fr));
            gap: 0.8em; margin: 1em 0 1.5em 0; }
.card { border: 1px solid #d0d0d0; border-radius: 6px; padding: 0.6em 0.8em; background: #fafafa; }
.card h3 { font-size: 0.85em; text-transform: uppercase; letter-spacing: 0.03em; color: #555;
           margin: 0 0 0.4em 0; }
.kv { display: flex; justify-content: space-between; align-items: baseline; gap: 0.6em;
      font-size: 1.05em; }
.kv .k { font-size: 0.92em; }
.kv .v { font-weight: 700; font-variant-numeric: tabular-nums; white-space: nowrap; }
.card .detail { font-size: 0.8em; color: #555; margin: 0.4em 0 0 0; }
table { border-collapse: collapse; margin: 0.8em 0 1.2em 0; font-size: 0.92em; }
caption { text-align: left; font-weight: 600; padding-bottom: 0.3em; }
th, td { border: 1px solid #d0d0d0; padding: 0.25em 0.6em; vertical-align: top; }
th { background: #f2f2f2; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
p.tnote { font-size: 0.85em; color: #555; margin-top: -0.8em; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #e4e4e4; }
figcaption { font-size: 0.9em; color: #444; }
"""

# Counts the figures that decoded; a headless browser reads the attributes with --dump-dom.
RENDER_CHECK_JS = """
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (im) { return im.complete && im.naturalWidth > 0; });
  document.body.setAttribute("data-images-total", String(imgs.length));
  document.body.setAttribute("data-images-decoded", String(ok.length));
});
"""


def png_data_uri(png: bytes) -> str:
    """`data:image/png;base64,...` for PNG bytes (checks the PNG signature)."""
    if not png.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("figure is not PNG data (missing the PNG signature)")
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _cell(v) -> tuple[str, bool]:
    """(escaped text, is_number)."""
    if v is None:
        return "-", False
    if isinstance(v, bool):
        return ("yes" if v else "no"), False
    if isinstance(v, (int, float)):
        return html.escape(str(v)), True
    try:
        float(v)
        return html.escape(str(v)), True  # a formatted number: right-aligned too
    except ValueError:
        return html.escape(str(v)), False


def _table(t: dict) -> str:
    out = ["<table>", f"<caption>{html.escape(t['caption'])}</caption>", "<thead><tr>"]
    out += [f"<th>{html.escape(str(h))}</th>" for h in t["header"]]
    out.append("</tr></thead><tbody>")
    for row in t["rows"]:
        if len(row) != len(t["header"]):
            raise ValueError(f"table {t['caption']!r}: row {row!r} has {len(row)} cells, the "
                             f"header {len(t['header'])}")
        cells = []
        for v in row:
            text, num = _cell(v)
            cells.append(f'<td class="num">{text}</td>' if num else f"<td>{text}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    if t.get("note"):
        out.append(f'<p class="tnote">{html.escape(t["note"])}</p>')
    return "\n".join(out)


def _figure(f: dict) -> str:
    cap = html.escape(f["caption"])
    return (f'<figure><img src="{png_data_uri(f["png"])}" alt="{cap}">'
            f"<figcaption>{cap}</figcaption></figure>")


def _with_code(text: str) -> str:
    """Escaped text whose `backquoted` parts become <code>."""
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an unpaired backquote: plain text
        return html.escape(text)
    return "".join(f"<code>{html.escape(p)}</code>" if i % 2 else html.escape(p)
                   for i, p in enumerate(parts))


def _headline(h: dict) -> str:
    out = [f'<section id="headline" aria-label="{html.escape(h["title"])}">']
    for c in h["cards"]:
        out.append('<div class="card">')
        out.append(f"<h3>{html.escape(c['label'])}</h3>")
        out += [f'<div class="kv"><span class="k">{html.escape(str(k))}</span>'
                f'<span class="v">{html.escape(str(v))}</span></div>' for k, v in c["lines"]]
        if c.get("detail"):
            out.append(f'<p class="detail">{html.escape(c["detail"])}</p>')
        out.append("</div>")
    out.append("</section>")
    return "\n".join(out)


def render_html(page: dict) -> str:
    """The whole page as a str (see the module docstring for `page`)."""
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>{html.escape(page['title'])}</title>", f"<style>{CSS}</style>", "</head>",
             "<body>", f"<h1>{html.escape(page['title'])}</h1>",
             f'<p class="subtitle">{html.escape(page["subtitle"])}</p>']
    parts += [f'<div class="banner" role="alert"><strong>{html.escape(b["title"])}</strong>'
              f'{_with_code(b["text"])}</div>' for b in page.get("banner", [])]
    if page.get("headline"):
        parts.append(_headline(page["headline"]))
    parts += [f'<p class="note">{html.escape(n)}</p>' for n in page["notes"]]
    for sec in page["sections"]:
        parts.append(f"<h2>{html.escape(sec['title'])}</h2>")
        if sec.get("intro"):
            parts.append(f"<p>{html.escape(sec['intro'])}</p>")
        parts += [_table(t) for t in sec.get("tables", [])]
        parts += [_figure(f) for f in sec.get("figures", [])]
    parts += [f"<script>{RENDER_CHECK_JS}</script>", "</body>", "</html>", ""]
    return "\n".join(parts)
