"""Value formats, worded as k8s.io/apimachinery/pkg/util/validation words them: DNS-1123/1035
names, qualified names, label values, port names, IPs and CIDRs. Pure predicates and
message lists; every API group's module checks its strings with these.
"""

from __future__ import annotations

import ipaddress
import re


_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = rf"{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*"
_DNS1035_LABEL = r"[a-z]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = rf"({_QUALIFIED_NAME})?"
_CONFIG_KEY = r"[-._a-zA-Z0-9]+"
_ENV_VAR_NAME = r"[-._a-zA-Z][-._a-zA-Z0-9]*"
_PERCENT = r"[0-9]+%"

MSG_DNS1123_LABEL = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
                     "or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  "
                     f"or '123-abc', regex used for validation is '{_DNS1123_LABEL}')")
MSG_DNS1123_SUBDOMAIN = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                         "characters, '-' or '.', and must start and end with an alphanumeric character "
                         f"(e.g. 'example.com', regex used for validation is '{_DNS1123_SUBDOMAIN}')")
MSG_DNS1035_LABEL = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                     "start with an alphabetic character, and end with an alphanumeric character "
                     f"(e.g. 'my-name',  or 'abc-123', regex used for validation is '{_DNS1035_LABEL}')")
MSG_QUALIFIED_NAME = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must "
                      "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  "
                      f"or '123-abc', regex used for validation is '{_QUALIFIED_NAME}')")
MSG_LABEL_VALUE = ("a valid label must be an empty string or consist of alphanumeric characters, "
                   "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
                   f"'MyValue',  or 'my_value',  or '12345', regex used for validation is '{_LABEL_VALUE}')")
MSG_CONFIG_KEY = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
                  f"(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '{_CONFIG_KEY}')")
MSG_ENV_VAR_NAME = ("a valid environment variable name must consist of alphabetic characters, "
                    "digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  "
                    f"or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '{_ENV_VAR_NAME}')")
MSG_PORT_RANGE = "must be between 1 and 65535, inclusive"
MSG_IMMUTABLE = "field is immutable"


def _full(pattern: str, s) -> bool:
    return isinstance(s, str) and re.fullmatch(pattern, s) is not None


def is_dns1123_label(s: str) -> bool:
    """RFC 1123 label: namespaces, container and port names (≤ 63 chars)."""
    return _full(_DNS1123_LABEL, s) and len(s) <= 63


def is_dns1123_subdomain(s: str) -> bool:
    """RFC 1123 subdomain: most object names (≤ 253 chars)."""
    return _full(_DNS1123_SUBDOMAIN, s) and len(s) <= 253


def is_dns1035_label(s: str) -> bool:
    """DNS-1035 label (starts with a letter): service names, so they can be DNS names."""
    return _full(_DNS1035_LABEL, s) and len(s) <= 63


def dns1123_label_errors(s: str) -> list[str]:
    out = ["must be no more than 63 characters"] if len(s) > 63 else []
    return out + ([] if _full(_DNS1123_LABEL, s) else [MSG_DNS1123_LABEL])


def dns1123_subdomain_errors(s: str) -> list[str]:
    out = ["must be no more than 253 characters"] if len(s) > 253 else []
    return out + ([] if _full(_DNS1123_SUBDOMAIN, s) else [MSG_DNS1123_SUBDOMAIN])


def dns1035_label_errors(s: str) -> list[str]:
    out = ["must be no more than 63 characters"] if len(s) > 63 else []
    return out + ([] if _full(_DNS1035_LABEL, s) else [MSG_DNS1035_LABEL])


def qualified_name_errors(s: str) -> list[str]:
    """Label and annotation keys: `[prefix/]name`, prefix a DNS subdomain, name ≤ 63."""
    parts = s.split("/")
    if len(parts) == 1:
        name, prefix = parts[0], None
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            return ["prefix part must be non-empty"]
    else:
        return ["a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must "
                "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
                f"'123-abc', regex used for validation is '{_QUALIFIED_NAME}') with an optional DNS "
                "subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    out = []
    if prefix is not None:
        out += [f"prefix part {m}" for m in dns1123_subdomain_errors(prefix)]
    if not name:
        out.append("name part must be non-empty")
    elif len(name) > 63:
        out.append("name part must be no more than 63 characters")
    if name and not _full(_QUALIFIED_NAME, name):
        out.append(MSG_QUALIFIED_NAME)
    return out


def label_value_errors(s: str) -> list[str]:
    out = ["must be no more than 63 characters"] if len(s) > 63 else []
    return out + ([] if _full(_LABEL_VALUE, s) else [MSG_LABEL_VALUE])


def port_name_errors(s: str) -> list[str]:
    """IANA_SVC_NAME (container port names, named targetPorts)."""
    out = []
    if len(s) > 15:
        out.append("must be no more than 15 characters")
    if not re.fullmatch(r"[-a-z0-9]+", s):
        out.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if "--" in s:
        out.append("must not contain consecutive hyphens")
    if not re.search(r"[a-z]", s):
        out.append("must contain at least one letter (a-z)")
    if s.startswith("-") or s.endswith("-"):
        out.append("must not begin or end with a hyphen")
    return out


def _is_ip(s, version: int | None = None) -> bool:
    try:
        ip = ipaddress.ip_address(s)
    except (ValueError, TypeError):
        return False
    return version is None or ip.version == version


def _is_cidr(s) -> bool:
    try:
        ipaddress.ip_network(s, strict=False)
    except (ValueError, TypeError):
        return False
    return isinstance(s, str) and "/" in s


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
