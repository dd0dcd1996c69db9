"""Sweeps: a chapter's parameter file as independent runs, each written to one file named by its
hash, executed by a local process pool, Slurm (submitit) or Ray.  ``python -m actfn.sweep --help``."""
from .plan import Sweep, chapter_of, page_only, plan, read_params
from .runner import execute
from .store import Run, Store, run_hash
from .tasks import TASKS, task_of

__all__ = ["Run", "Store", "Sweep", "TASKS", "chapter_of", "execute", "page_only", "plan", "read_params", "run_hash",
           "task_of"]
