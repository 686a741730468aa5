"""Indexes for a person's filtered lists: status, project, model, favourites. Each leads
with the owner (the RLS policy's user_id), then the filter, then the page's order, so a
filter with few matches reads only its matches, newest first, instead of walking the
person's whole history (129 ms at 100k generations before). The date filters are served
by generations_user_created_idx. Built concurrently: generations is the work queue."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [("generations", "0015_generation_stats")]

    operations = [
        AddIndexConcurrently(
            model_name="generation",
            index=models.Index(fields=["user", "status", "-created_at", "-id"], name="generations_user_status_idx"),
        ),
        AddIndexConcurrently(
            model_name="generation",
            index=models.Index(fields=["user", "project", "-created_at", "-id"], name="generations_user_project_idx"),
        ),
        AddIndexConcurrently(
            model_name="generation",
            index=models.Index(fields=["user", "ai_model", "-created_at", "-id"], name="generations_user_model_idx"),
        ),
        AddIndexConcurrently(
            model_name="generation",
            index=models.Index(
                condition=models.Q(is_favorite=True),
                fields=["user", "-created_at", "-id"],
                name="generations_user_favorite_idx",
            ),
        ),
    ]
