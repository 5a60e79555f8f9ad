"""`make bench`: measures the monthly cycle of Đoàn viên số side by side with DuckDB's own floor.

Run `python -m bench.run --scale small|national --seed N` (what `make bench` does). Every step runs in a
fresh child process (`bench.child`) so that wall time, CPU time and peak RSS are measured the same way
for the engines and for the floors. See bench/README.md.
"""
