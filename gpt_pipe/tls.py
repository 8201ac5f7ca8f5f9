"""The one TLS policy, for the early connection and for requests alike: which CA
certificates are trusted, and how a server's certificate is checked. Standard library
only (certifi is asked for its bundle only when no other is named)."""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl

# Variables requests honours for its CA bundle, in its order.
CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def ca_bundle(flag: str | None) -> tuple[str, str]:
    """The CA bundle (a PEM file or a directory of them) and where it was named: the
    --ca-bundle flag (or config key), else REQUESTS_CA_BUNDLE, else CURL_CA_BUNDLE, else
    certifi's. A named bundle that is neither a file nor a directory is a configuration
    error (exit 78), never a server's fault."""
    where, path = "--ca-bundle", flag
    if not path:
        for variable in CA_VARIABLES:
            if os.environ.get(variable):
                where, path = variable, os.environ[variable]
                break
    if not path:
        import certifi

        return certifi.where(), "certifi"
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        from gpt_pipe.exitcodes import ExitCode, GptPipeError

        raise GptPipeError(f"{where} {path}: {exc.strerror}", ExitCode.CONFIG) from None
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        from gpt_pipe.exitcodes import ExitCode, GptPipeError

        raise GptPipeError(f"{where} {path}: not a file of certificates", ExitCode.CONFIG)
    return path, where


def context(bundle: str) -> ssl.SSLContext:
    """A client context as urllib3 makes one for requests: the chain checked against
    ``bundle``, the hostname checked against the certificate's subjectAltName only (never
    its CN), TLS 1.2 at least, HTTP/1.1 offered."""
    import ssl

    is_dir = os.path.isdir(bundle)
    ctx = ssl.create_default_context(cafile=None if is_dir else bundle, capath=bundle if is_dir else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.hostname_checks_common_name = False
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx
