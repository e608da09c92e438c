"""kubelab scheduler: pure filters.py/scores.py, I/O in scheduler.py, flags in main.py."""
