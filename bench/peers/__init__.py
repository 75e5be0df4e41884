"""Other HE engines measured beside ours on the same layers (bench/test_peers.py).

Each peer is optional (the `peers` extra: `pip install -e .[peers]`) and imported lazily,
so these modules load, and the tests run, without it.
"""
