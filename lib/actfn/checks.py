"""Parameter checks shared by the trainers: a bad value stops at once, with the parameter's name."""


def require(ok: bool, name: str, value, what: str) -> None:
    if not ok:
        raise ValueError(f"parameter {name!r} {what}, got {value!r}")


def require_learning_rate(name: str, value) -> None:
    """Adam's step size: the rule of :data:`actfn.params.LEARNING_RATE` (finite, in (0, 1])."""
    from .params import LEARNING_RATE

    require(LEARNING_RATE(value), name, value, f"must be {LEARNING_RATE.accepts}")
