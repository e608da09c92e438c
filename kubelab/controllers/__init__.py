"""kubelab controller-manager: one module per control loop (see manager.py for the list).

Each loop is pure "desired state" functions (unit tested) plus a small queue-driven sync.
"""
