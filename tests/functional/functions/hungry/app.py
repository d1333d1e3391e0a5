"""Test handler that uses more memory than its function's MemorySize (128 MB in runtime_template.yaml)."""


def handler(event, context):
    block = bytearray(event["Megabytes"] * 1024 * 1024)
    for offset in range(0, len(block), 4096):  # touch every page: resident, as Lambda counts it
        block[offset] = 1
    return {"Allocated": len(block), "MemoryLimitInMB": context.memory_limit_in_mb}
