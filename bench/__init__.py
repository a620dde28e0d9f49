"""Benchmarks, run from the repository root as modules: `python -m bench.t2i`, `python -m bench.t2v`,
`python -m bench.cache`, `python -m bench.video_dit`. Results and the commands that made them:
docs/BENCHMARKS.md."""
