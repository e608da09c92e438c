"""kubelab lab."""
