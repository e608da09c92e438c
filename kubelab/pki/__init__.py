"""The lab PKI: a CA, one certificate per component, service-account token keys.

- `ca`      a certificate authority and what it signs (the `cryptography` package)
- `certs`   the lab's identities, as Kubernetes The Hard Way issues them, and a kubeconfig each
- `peer`    the verified TLS client certificate, handed to the app and read as a user
- `tokens`  service-account tokens: compact JWTs (RS256 or ES256)
"""
