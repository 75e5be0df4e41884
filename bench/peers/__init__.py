"""Other HE engines measured beside ours on the same layers (bench/test_peers.py).

Each peer is optional (orion-fhe, in an environment of its own as the README says) and imported lazily,
so these modules load, and the tests run, without it.
"""
