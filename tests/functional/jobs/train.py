"""A training job script for runtime tests: reads hyperparameters and a channel, writes a model and metrics."""

import json
import os
from pathlib import Path

config = Path(os.environ["SM_INPUT_CONFIG_DIR"])
hyperparameters = json.loads((config / "hyperparameters.json").read_text())
rows = sum(1 for path in Path(os.environ["SM_CHANNEL_TRAIN"]).iterdir() for _ in path.open())
model_dir = Path(os.environ["SM_MODEL_DIR"])
(model_dir / "model.json").write_text(json.dumps({"rows": rows, "hyperparameters": hyperparameters}))
for epoch in range(3):
    print(f"epoch {epoch} validation:auc={0.7 + epoch / 100:.4f};")
if hyperparameters.get("fail") == "true":
    (Path(os.environ["SM_OUTPUT_DIR"]) / "failure").write_text("hyperparameter fail=true asked for a failure")
    raise SystemExit(1)
