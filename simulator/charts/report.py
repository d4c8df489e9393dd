"""One self-contained HTML report: every supported chart (PNG inlined as base64), the notes
on skipped charts, and the results table."""

from __future__ import annotations

import base64
import html
import json
import tempfile
from pathlib import Path

import pandas as pd

from simulator.charts.draw import load_results, plot_all


#: the line every report holds (an existing file is replaced only when it holds it)
SIGNATURE = "<title>fleetsim report:"


def write_report(results: str | Path, out_path: str | Path | None = None, fleet_scale: float = 1.0,
                 slo_target: float = 0.99, overwrite: bool = False) -> Path:
    """Write ``report.html`` (default inside ``results``), written atomically; an existing file
    is replaced only when it is a fleetsim report, or with ``overwrite``
    (:func:`simulator.output.write_text_file`)."""
    from simulator.output import write_text_file

    r = load_results(results)
    out = Path(out_path) if out_path else r.dir / "report.html"
    with tempfile.TemporaryDirectory() as tmp:
        charts, skipped = plot_all(r, tmp, fleet_scale=fleet_scale, slo_target=slo_target,
                                   formats=("png",))
        figures = []
        for c in charts:
            png = next(p for p in c.paths if p.suffix == ".png")
            b64 = base64.b64encode(png.read_bytes()).decode()
            figures.append(f'<figure><img alt="{html.escape(c.title)}" src="data:image/png;base64,'
                           f'{b64}"><figcaption>{html.escape(c.title)}</figcaption></figure>')
    meta = ""
    if (r.dir / "sweep.json").exists():
        m = json.loads((r.dir / "sweep.json").read_text())
        meta = (f"<p>Scenario <code>{html.escape(str(m['scenario']))}</code>, command"
                f" <code>{html.escape(m['command'])}</code>, {len(m['points'])} points"
                f" ({len(r.table)} finished); swept: {html.escape(', '.join(r.params) or 'nothing')}.</p>")
    notes = "".join(f"<li><b>{html.escape(n)}</b>: {html.escape(w)}</li>" for n, w in skipped)
    with pd.option_context("display.float_format", "{:.4g}".format):
        table = r.table.to_html(index=False, na_rep="", border=0, classes="results")
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>fleetsim report: {html.escape(r.dir.name)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
figure {{ display: inline-block; margin: 1em; vertical-align: top; }}
img {{ max-width: 100%; }}
.wrap {{ overflow-x: auto; }}
table.results {{ border-collapse: collapse; font-size: 12px; }}
table.results td, table.results th {{ border: 1px solid #ccc; padding: 2px 6px; text-align: right; }}
</style></head><body>
<h1>fleetsim report: {html.escape(r.dir.name)}</h1>
{meta}
<p>Energy per day is at the simulated load (fleet scale {fleet_scale:g}); SLO target
{slo_target:.0%} of requests of every class.</p>
<h2>Charts</h2>
{''.join(figures) or '<p>No chart is supported by these results.</p>'}
{f'<h3>Charts not drawn</h3><ul>{notes}</ul>' if notes else ''}
<h2>Results ({len(r.table)} rows)</h2>
<div class="wrap">{table}</div>
</body></html>
"""
    return write_text_file(out, page, signature=SIGNATURE, overwrite=overwrite)
