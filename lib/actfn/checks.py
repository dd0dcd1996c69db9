"""Parameter checks shared by the trainers: a bad value stops at once, with the parameter's name."""


def require(ok: bool, name: str, value, what: str) -> None:
    if not ok:
        raise ValueError(f"parameter {name!r} {what}, got {value!r}")


def require_learning_rate(name: str, value) -> None:
    """Adam's step size: finite, above 0 and at most 1 (see actfn.params)."""
    import math

    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0 < value <= 1
    require(ok, name, value, "must be a finite number in (0, 1]")
