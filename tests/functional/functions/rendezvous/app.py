"""Test handler: two invocations that can only finish together (each waits for the other's mark), so they finish
only if the local Lambda runs them at the same time. Each gives up before the function's Timeout."""

import os
import time
from pathlib import Path


def handler(event, context):
    directory = Path(event["Directory"])
    directory.mkdir(parents=True, exist_ok=True)
    (directory / event["Me"]).touch()
    while not (directory / event["Other"]).exists():
        if context.get_remaining_time_in_millis() < 1000:
            raise TimeoutError(f"{event['Me']} never met {event['Other']}: the invocations did not run at the same time")
        time.sleep(0.02)
    return {"Met": event["Other"], "Pid": os.getpid()}
