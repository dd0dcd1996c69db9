"""Parameter checks shared by the trainers: a bad value stops at once, with the parameter's name."""


def require(ok: bool, name: str, value, what: str) -> None:
    if not ok:
        raise ValueError(f"parameter {name!r} {what}, got {value!r}")
