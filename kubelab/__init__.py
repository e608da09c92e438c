"""kubelab: a mini-Kubernetes in Python, built so students can see how Kubernetes works."""

__version__ = "0.1.0"
