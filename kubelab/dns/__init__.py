"""kubelab dns."""
