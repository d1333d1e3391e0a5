"""`make bench`: every benchmark in bench/, each writing bench/results/<name>.json."""

import sys

from bench import cli_start, console, data_quality, lambda_workers, large_data, merge, serving_latency, serving_stack, tuning_credit

BENCHMARKS = {"cli_start": cli_start.main, "serving_latency": serving_latency.main, "serving_stack": serving_stack.main,
              "lambda_workers": lambda_workers.main, "data_quality": data_quality.main, "merge": merge.main,
              "console": console.main, "large_data": large_data.main, "tuning_credit": tuning_credit.main}

if __name__ == "__main__":
    failed = [name for name, run in BENCHMARKS.items() if run([]) != 0]
    sys.exit(1 if failed else 0)
