"""A job script for runtime tests: copies its input channel to its output and prints a metric."""

import argparse
import shutil
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--input", required=True)
parser.add_argument("--output", required=True)
args = parser.parse_args()
for path in Path(args.input).iterdir():
    shutil.copy(path, Path(args.output) / f"copied-{path.name}")
print("validation:auc=0.8125;")
