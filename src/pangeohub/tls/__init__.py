"""HTTPS for the hub: a domain, its certificate (ACME through lego, or the operator's own files), and the
listeners around configurable-http-proxy.

Design, and why:
- configurable-http-proxy terminates TLS itself, so it still sees each client's address on the socket and
  appends it to ``X-Forwarded-For`` as it does over HTTP: nothing in front of it could be bypassed by a local
  user connecting to the proxy with a forged header. It cannot reload a certificate, so ``proxy_tls.js`` starts
  it unchanged and swaps the certificate with Node's ``setSecureContext`` on SIGHUP: new connections get the new
  certificate, open ones (kernel websockets) are never touched.
- Certificates come from lego (Debian's ACME client, maintained, one static binary, runs once per issuance and
  leaves retries and timing to us): we check DNS and port 80 before every request, back off after failures,
  and never fall back to a certificate nobody trusts.
- One small service (``services/tls.py``) answers on port 80 (ACME challenges, redirect to HTTPS) and runs the
  renewal timer.
"""
