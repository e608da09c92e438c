"""The lab PKI: a CA, one certificate per component, service-account token keys."""
