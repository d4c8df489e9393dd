"""``python -m simulator`` is ``fleetsim``."""

from simulator.cli import main

main(prog_name="fleetsim")
