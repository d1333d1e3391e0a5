"""Runtime: what trains and judges a model: dataset config, data checks and preparation, fitting, the model artifact, metrics, fairness, explanations and the quality gate."""
