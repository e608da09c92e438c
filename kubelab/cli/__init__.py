"""kubelab cli."""
