"""Benchmarks behind `dogbreed bench`: each module exposes `register(bench_subparsers)`."""
