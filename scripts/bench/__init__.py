"""The benchmark behind `make bench`, run from the repository root as `python -m scripts.bench`.

One module per part of a run:

- `__main__`: the command line; runs every scale, then writes the results.
- `bench_host`: the checkout, the machine, its load and versions; running a probe process.
- `bench_data`: the scales and their generated CSVs (the initial files and the next day's export).
- `bench_engine`: DuckDB or Spark (local or on a cluster), the warm-up run.
- `bench_scale`: one scale end to end: the whole graph, the refreshes, then every probe.
- `cli_timing`: one timed `dagster` process: wall time, peak memory, step times.
- `process_memory`: the RSS of a process tree, polled for its peak.
- `step_layers`: step times summed by layer (bronze → gold, curves and plan).
- `daily_refresh_run`: the daily refresh after one appended day.
- `dashboard_probes`: the dashboard under AppTest and in headless Chromium.
- `replan_probe`: the What-if's re-plan of every ad set.
- `ml_probes`: the feature assets at twice the days; both training budgets side by side.
- `bench_targets`: the issue's targets and each measure's verdict.
- `bench_report`: the JSON per engine and BENCHMARKS.md rendered from all of them.
- `duckdb_section`, `spark_section`, `section_rows`: BENCHMARKS.md's sections and shared rows.
"""
