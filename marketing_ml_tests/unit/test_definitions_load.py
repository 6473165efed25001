"""Loading the definitions imports nothing heavy: every process (a CLI run, `dg check defs`, the
UI, a sensor tick) pays for what the code location imports before any step runs, and XGBoost
alone (with the scikit-learn and SciPy it pulls in) cost about 1.2 s of it."""

import json
import subprocess
import sys

HEAVY_MODULES = ("xgboost", "sklearn", "scipy")


def test_loading_the_definitions_imports_no_ml_or_scientific_library():
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys\n"
            "from marketing_ml.definitions import defs\n"
            "repository = defs.get_repository_def()\n"
            "print(json.dumps({\n"
            "    'assets': len(repository.asset_graph.get_all_asset_keys()),\n"
            f"    'heavy': sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY_MODULES)!r}),\n"
            "}))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(loaded.stdout)
    assert report["assets"] > 0
    assert report["heavy"] == []
