"""A real OpenLDAP slapd (Debian's package) on a random loopback port, with a FreeIPA-like tree:
people under cn=users,cn=accounts, groups (groupOfNames, 'member' DNs) under cn=groups,cn=accounts.

Loaded and changed with ldap-utils (ldapadd / ldapmodify) as the directory's root DN, like an IPA admin.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SUFFIX = "dc=example,dc=org"
USERS = f"cn=users,cn=accounts,{SUFFIX}"
GROUPS = f"cn=groups,cn=accounts,{SUFFIX}"
ROOT_DN = f"cn=Directory Manager,{SUFFIX}"

_CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {dir}/slapd.pid
argsfile {dir}/slapd.args
database mdb
maxsize 33554432
suffix "{suffix}"
rootdn "{root_dn}"
rootpw {root_pw}
directory {dir}/data
access to attrs=userPassword by self auth by anonymous auth by * none
access to * by users read by * none
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(directory: Path, name: str) -> Path:
    """A self-signed CA (key and certificate) in ``directory``; returns the certificate."""
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2", "-subj", f"/CN={name}", cwd=directory)
    return directory / f"{name}.crt"


class Slapd:
    """``tls=True``: also StartTLS on the same port and LDAPS on ``tls_port``, with a certificate for the
    name 'localhost' only (not 127.0.0.1) signed by ``ca`` (the directory's own CA, as FreeIPA has)."""

    def __init__(self, tls: bool = False):
        self.dir = Path(tempfile.mkdtemp(prefix="pangeohub-slapd-"))
        (self.dir / "data").mkdir()
        self.port = _free_port()
        self.url = f"ldap://127.0.0.1:{self.port}"
        self.root_pw = secrets.token_urlsafe(12)
        conf = _CONF.format(dir=self.dir, suffix=SUFFIX, root_dn=ROOT_DN, root_pw=self.root_pw)
        self.urls = [self.url]
        self.tls_port: int | None = None
        self.ca: Path | None = None
        if tls:
            self.tls_port = _free_port()
            self.urls.append(f"ldaps://127.0.0.1:{self.tls_port}")
            self.ca = make_ca(self.dir, "directory-ca")
            _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                     "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost", cwd=self.dir)
            (self.dir / "san.ext").write_text("subjectAltName=DNS:localhost\n")
            _openssl("x509", "-req", "-in", "server.csr", "-CA", "directory-ca.crt", "-CAkey", "directory-ca.key",
                     "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext", cwd=self.dir)
            conf = (f"TLSCACertificateFile {self.ca}\nTLSCertificateFile {self.dir / 'server.crt'}\n"
                    f"TLSCertificateKeyFile {self.dir / 'server.key'}\n") + conf
        (self.dir / "slapd.conf").write_text(conf)
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Slapd":
        # -d 0: stay in the foreground (a child we can stop), without debug output.
        self.proc = subprocess.Popen(
            ["/usr/sbin/slapd", "-d", "0", "-h", " ".join(f"{url}/" for url in self.urls),
             "-f", str(self.dir / "slapd.conf")],
            stdout=subprocess.DEVNULL, stderr=open(self.dir / "slapd.log", "w"),
        )
        for _ in range(200):
            if self.proc.poll() is not None:
                raise RuntimeError(f"slapd exited: {(self.dir / 'slapd.log').read_text()}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            time.sleep(0.05)
        self.ldif("ldapadd", f"""
dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: cn=accounts,{SUFFIX}
objectClass: applicationProcess
cn: accounts
""")
        self.ldif("ldapadd", f"""
dn: {USERS}
objectClass: applicationProcess
cn: users

dn: {GROUPS}
objectClass: applicationProcess
cn: groups
""")
        return self

    def ldif(self, tool: str, text: str) -> None:
        proc = subprocess.run(
            [tool, "-x", "-H", self.url, "-D", ROOT_DN, "-w", self.root_pw],
            input=text, capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{tool} failed: {proc.stderr}\n{text}")

    def add_user(self, uid: str, password: str) -> str:
        dn = f"uid={uid},{USERS}"
        self.ldif("ldapadd", f"""
dn: {dn}
objectClass: inetOrgPerson
uid: {uid}
cn: {uid}
sn: {uid}
userPassword: {password}
""")
        return dn

    def add_group(self, cn: str, members: list[str]) -> str:
        dn = f"cn={cn},{GROUPS}"
        # groupOfNames needs one member at least: the directory manager is always one, so that removing the
        # last person keeps the group valid.
        lines = "\n".join([f"member: {ROOT_DN}"] + [f"member: uid={m},{USERS}" for m in members])
        self.ldif("ldapadd", f"dn: {dn}\nobjectClass: groupOfNames\ncn: {cn}\n{lines}\n")
        return dn

    def remove_member(self, cn: str, uid: str) -> None:
        self.ldif("ldapmodify", f"""
dn: cn={cn},{GROUPS}
changetype: modify
delete: member
member: uid={uid},{USERS}
""")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
