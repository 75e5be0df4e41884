"""The measurements, one function each, returning typed records: unit costs, a layer, a model.

Used by the command line and by the pytest-benchmark suites alike, so that every figure
comes from one code path.
"""
