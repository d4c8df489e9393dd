"""Options shared by the commands that write output folders and run simulations."""

from __future__ import annotations

import click

#: ``--overwrite`` of every command that writes an output folder or file
OVERWRITE = click.option(
    "--overwrite", is_flag=True,
    help="replace OUT even when it is a non-empty folder (or a file) fleetsim did not write;"
         " never a device, the current folder, a repository or a folder holding an input")
#: ``--force`` of every command that runs simulations
FORCE = click.option(
    "--force", is_flag=True,
    help="run even when the run would exceed half this machine's memory or take hours by the"
         " estimate (docs/invariants.md, limits)")
