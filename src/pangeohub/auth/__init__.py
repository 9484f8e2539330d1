"""Login modes. Each module extends one of JupyterHub's (or oauthenticator's / ldapauthenticator's)
authenticators through its plug-in points; ``common`` holds what every mode shares (Linux-safe names,
lockout, group-based admin, uniform refusals).

- workshop: generated accounts with printable sheets, and ending them (password mode)
- ldap:     LDAP / FreeIPA bind with group-based access, admin and hub groups
- github:   GitHub OAuth with organisation/team access, team-based admin and hub groups
- signup:   a sign-up form and an admin approval page
- shared:   one shared password for quick demos
"""

AUTHENTICATOR_CLASSES = {
    "password": "pangeohub.hub.auth.PangeoAuthenticator",
    "signup": "pangeohub.auth.signup.SignupAuthenticator",
    "ldap": "pangeohub.auth.ldap.PangeoLDAPAuthenticator",
    "github": "pangeohub.auth.github.PangeoGitHubAuthenticator",
    "shared": "pangeohub.auth.shared.PangeoSharedPasswordAuthenticator",
}
