"""The code location's definitions, one folder per asset group, loaded by Dagster's defs-folder
loading (`dg.load_from_defs_folder`, configured by [tool.dg] in pyproject.toml): every asset,
check, job, schedule and sensor at a module's top level here is in the one Definitions.
Library code (contract, cleaning, ingest/, ml/, storage/) lives beside this folder."""
