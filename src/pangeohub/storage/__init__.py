"""Object storage: the embedded SeaweedFS, per-user S3 identities limited to a private scratch prefix, expiry.

``identities`` (pure: who may do what), ``credentials`` (per-user keys, 0600 under the state dir),
``weed`` (SeaweedFS command lines), ``runner`` (the supervised process: SeaweedFS in a private network
namespace plus the one forwarded S3 port), ``admin`` (admin-side operations), ``hook`` (the spawn hook).
"""
