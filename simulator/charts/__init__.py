"""Planning charts from sweep (or run) results: matplotlib figures without pyplot's global
state, each saved as PNG and SVG, titled, with units on every axis.

``plots`` holds one function per chart, each taking a tidy DataFrame (so a projection's output
can feed the same function); ``draw`` derives those frames from a results folder and decides
which charts the results support; ``report`` writes one self-contained HTML page.
"""

from simulator.charts.draw import plot_all
from simulator.charts.report import write_report

__all__ = ["plot_all", "write_report"]
