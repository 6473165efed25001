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


def test_training_in_a_fresh_process_limits_every_blas_library_to_one_thread():
    """scikit-learn and SciPy are imported lazily, so the BLAS they load must be loaded before
    training limits BLAS to one thread (threadpoolctl limits only what is loaded): on two
    threads the logistic baseline's weights, and so the model card, depended on the machine."""
    inside = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json\n"
            "from threadpoolctl import threadpool_info\n"
            "from marketing_ml.ml import training\n"
            "training._train_model = lambda *arguments: threadpool_info()\n"
            "pools = training.train_model(None, training.CONVERSION, None)\n"
            "print(json.dumps([[p['user_api'], p['filepath'], p['num_threads']] for p in pools]))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    blas = [(path, threads) for api, path, threads in json.loads(inside.stdout) if api == "blas"]
    assert any("/scipy.libs/" in path for path, _ in blas)  # SciPy's own, which L-BFGS uses
    assert [threads for _, threads in blas] == [1] * len(blas)
