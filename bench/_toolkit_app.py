"""The WSGI app the serving image's script-mode stack runs (gunicorn imports it as `_toolkit_app:app`), built from
the SageMaker containers toolkit's own pieces. `_server.start` has already installed the user module (its
`pip install . -r requirements.txt`, offline from the wheels) before starting gunicorn; each worker imports it and
wraps `model_fn`/`input_fn`/`predict_fn`/`output_fn` in the toolkit's `_transformer.Transformer`, served by its Flask
`_worker.Worker`. Run only inside .venv-bench-serving (bench/serving_stack.py)."""

import importlib

from sagemaker_containers import _env, _transformer, _worker

serving_env = _env.ServingEnv()
user_module = importlib.import_module(serving_env.module_name)
transformer = _transformer.Transformer(model_fn=user_module.model_fn, input_fn=user_module.input_fn,
                                       predict_fn=user_module.predict_fn, output_fn=user_module.output_fn)
app = _worker.Worker(transform_fn=transformer.transform, initialize_fn=transformer.initialize,
                     module_name=serving_env.module_name)
