"""kubelab cni."""
