"""kubelab controllers."""
