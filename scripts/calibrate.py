"""The calibration study (`make calibrate`): the budget plan on generated data with planted truth.

Writes benchmarks/calibration.json and benchmarks/calibration.md (per variant, each figure against
issue 21's target); --save-before also keeps the JSON as benchmarks/calibration-before.json, the
figures later runs are shown against. --generator other runs the study on marketing_ml.other_world
(a world the plan was not built against) and keeps its figures beside the sample generator's, under
"other_generator". A measurement, not a gate: it exits 0 whatever it finds.
"""

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from marketing_ml.ingest.settle import SETTLE_ENV  # noqa: E402
from marketing_ml.simulation import (  # noqa: E402
    GENERATORS,
    beside_each_other,
    json_ready,
    markdown,
    run_study,
)


def names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def seeds(text: str) -> list[int]:
    return [int(seed) for seed in text.split(",") if seed.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", choices=sorted(GENERATORS), default="sample")
    parser.add_argument(
        "--variants", type=names, help="comma-separated; default: all of the generator's"
    )
    parser.add_argument("--seeds", type=seeds, default=[1, 2, 3], help="comma-separated")
    parser.add_argument("--ad-sets", type=int, default=50)
    parser.add_argument("--days", type=int, default=240)
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks")
    parser.add_argument(
        "--save-before",
        action="store_true",
        help="also keep these figures as calibration-before.json, the baseline later runs show",
    )
    args = parser.parse_args()
    known = GENERATORS[args.generator]
    variants = args.variants or list(known)
    unknown = sorted(set(variants) - set(known))
    if unknown:
        parser.error(f"unknown variants {unknown}: choose from {', '.join(known)}")
    if args.save_before and args.generator != "sample":
        parser.error("--save-before keeps the sample generator's figures only")
    study_path = args.out_dir / "calibration.json"
    if args.generator != "sample" and not study_path.exists():
        parser.error(f"{study_path}: run the sample generator's study first")
    os.environ.setdefault(SETTLE_ENV, "0")  # the study writes each file whole before reading it

    def progress(run: dict) -> None:
        print(
            f"{run['variant']:>16} seed {run['seed']}: share {run['share']:.0%}, "
            f"claimed/true {run['claim_ratio']:.2f}, {run['seconds']:.1f} s",
            flush=True,
        )

    study = run_study(variants, args.seeds, args.ad_sets, args.days, progress, args.generator)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    previous = json.loads(study_path.read_text()) if study_path.exists() else {}
    study = beside_each_other(previous, study)
    text = json.dumps(json_ready(study), indent=2, allow_nan=False) + "\n"
    study_path.write_text(text)
    before_path = args.out_dir / "calibration-before.json"
    if args.save_before:
        before_path.write_text(text)
    before = json.loads(before_path.read_text()) if before_path.exists() else None
    page = markdown(study, before)
    (args.out_dir / "calibration.md").write_text(page)
    print(page)


if __name__ == "__main__":
    main()
