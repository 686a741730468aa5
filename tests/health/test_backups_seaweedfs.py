"""Backups on SeaweedFS, a real S3 server that checks signatures and access (moto does
neither): tests/health/test_backups.py has the rest. Like tests/media/test_seaweedfs.py,
left out of CI's second run (stock PostgreSQL): it tests the store, not the database."""

import httpx

from health.backups import backup_take, backup_verify


def test_on_a_real_s3_server_a_backup_is_not_readable_without_the_keys(db, seaweed_s3, settings):
    """SeaweedFS checks signatures and access, which moto does not: the copy is stored,
    verified from there, and an anonymous GET of it is refused."""
    bucket = seaweed_s3.new_bucket()
    seaweed_s3.use(settings, bucket)

    record = backup_verify(name=backup_take().name)

    assert record.verify_ok is True
    assert seaweed_s3.keys(bucket) == [f"backups/{record.name}", f"backups/{record.name}.sha256"]
    anonymous = httpx.get(f"{seaweed_s3.endpoint}/{bucket}/backups/{record.name}", timeout=10)
    assert anonymous.status_code == 403
