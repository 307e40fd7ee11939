"""Performance measurements: `make bench` (all) or `python -m benchmarks NAME ...`.

Each module benchmarks/bench_<name>.py defines `run() -> list[dict]`: rows of measured numbers,
ratios taken side by side in the same run. Results are printed as a table and written to
benchmarks/results/<name>.json with the machine, date and device.
"""
