"""`make demo` (`python -m demo`): the whole system on local defaults, driven end to end (demo/run.py).

Not part of any library: it drives the deploy scripts, the aggregator, its operators and the
reference prover (provers/) as separate processes, the way an operator and a prover would.
"""
