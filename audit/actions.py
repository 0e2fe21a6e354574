"""The actions the audit log may record: each app registers its own from its AppConfig, so the log
itself imports none of our apps."""

_ACTIONS: dict[str, str] = {}


def actions_register(choices: list[tuple[str, str]]) -> None:
    _ACTIONS.update(choices)


def action_choices() -> list[tuple[str, str]]:
    return list(_ACTIONS.items())
