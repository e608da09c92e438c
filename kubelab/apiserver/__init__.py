"""kubelab apiserver."""
