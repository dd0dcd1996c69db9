import os

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("ACTFN_PROGRESS", "off")
