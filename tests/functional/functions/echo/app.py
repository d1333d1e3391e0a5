"""Test handler: returns its event with the function's environment, to prove both reach it, and the log stream
of the execution environment that answered."""

import os


def handler(event, context):
    return {"Echo": event, "Greeting": os.environ["GREETING"], "Stage": os.environ["STAGE"], "Function": context.function_name,
            "LogStream": context.log_stream_name}
