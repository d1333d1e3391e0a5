"""Test handler that raises, as a broken Lambda would."""


class ScoringConfigError(Exception):
    pass


def handler(event, context):
    raise ScoringConfigError(f"cannot score {event.get('Item')}: threshold missing")
