"""kubelab nodeagent."""
