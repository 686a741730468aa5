"""users.storage_bytes: what a person's stored files take (issue 15); generations 0011
keeps it by trigger."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_sync_triggers_to_private"),
    ]

    operations = [
        migrations.AddField(
            model_name="profile",
            name="storage_bytes",
            field=models.BigIntegerField(db_default=0, default=0, editable=False),
        ),
    ]
