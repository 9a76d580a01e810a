"""``python -m ingest.simulator``: the same as ``zhcharge simulate-operator``."""

from ingest.simulator.cli import simulate_operator

simulate_operator(prog_name="python -m ingest.simulator")
