"""kubelab scheduler."""
