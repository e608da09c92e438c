"""kubelab proxy."""
