"""An uploaded avatar's storage name (issue 15); written by the service side only (no grant)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0007_storage_bytes"),
    ]

    operations = [
        migrations.AddField(
            model_name="profile",
            name="avatar_path",
            field=models.CharField(blank=True, db_default="", editable=False, max_length=300),
        ),
    ]
