"""report.html.render_html: escaping, embedded figures, table shape (no browser needed)."""
from __future__ import annotations

import base64
import io

import pytest

from lava_runtime.report.html import png_data_uri, render_html


def _png() -> bytes:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1], [1, 0])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _page(**section) -> dict:
    return {"title": "T <1>", "subtitle": "s & t", "notes": ["careful <b>"],
            "sections": [{"title": "S", **section}]}


def test_cells_are_escaped_and_numbers_right_aligned():
    page = render_html(_page(tables=[{"caption": "c", "header": ["a", "b", "c", "d"],
                                      "rows": [["<script>x</script>", 1.5, "12.0", None]]}]))
    assert "<td>&lt;script&gt;x&lt;/script&gt;</td>" in page
    assert '<td class="num">1.5</td><td class="num">12.0</td><td>-</td>' in page
    assert "<title>T &lt;1&gt;</title>" in page and "careful &lt;b&gt;" in page


def test_figures_are_embedded_as_png_data_uris():
    png = _png()
    page = render_html(_page(figures=[{"caption": "fig", "png": png}]))
    uri = png_data_uri(png)
    assert f'<img src="{uri}" alt="fig">' in page
    assert base64.b64decode(uri.split(",", 1)[1]) == png
    assert page.count("<img") == 1


def test_non_png_figure_and_ragged_row_are_refused():
    with pytest.raises(ValueError, match="figure is not PNG data"):
        render_html(_page(figures=[{"caption": "f", "png": b"GIF89a..."}]))
    with pytest.raises(ValueError, match=r"table 'c': row \['x'\] has 1 cells, the header 2"):
        render_html(_page(tables=[{"caption": "c", "header": ["a", "b"], "rows": [["x"]]}]))


def test_banner_and_headline_come_first_escaped():
    page = render_html({**_page(tables=[{"caption": "c", "header": ["a"], "rows": [[1]]}]),
                        "banner": [{"title": "Did <not> finish",
                                    "text": "resume with `train --out a&b` now"}],
                        "headline": {"title": "Headline", "cards": [
                            {"label": "Accuracy", "lines": [["float", "9.0 %"]],
                             "detail": "on <3> samples"}]}})
    banner = ('<div class="banner" role="alert"><strong>Did &lt;not&gt; finish</strong>'
              "resume with <code>train --out a&amp;b</code> now</div>")
    card = ('<span class="k">float</span><span class="v">9.0 %</span>')
    assert banner in page and card in page and "on &lt;3&gt; samples" in page
    assert page.index(banner) < page.index('<section id="headline"') < page.index(
        "careful &lt;b&gt;") < page.index("<h2>S</h2>")
