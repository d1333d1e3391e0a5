"""Test handler that runs past its function's Timeout (1 s in runtime_template.yaml)."""

import time


def handler(event, context):
    time.sleep(event.get("Seconds", 30))
    return {"Slept": event.get("Seconds", 30)}
