"""Catalog parameter defaults that break their own limits are brought inside them.

The seed gave ``duration`` a default of 5 s to models whose minimum is 6 s (Hailuo 02
Pro). The API fills defaults in after validating what the client sent, so every such
request went to the provider with a duration the model refuses; since 0008 the database
checks parameters too and would refuse it. Each default outside its property's limits
becomes the nearest value inside them (the first enum value for an enum). The admin now
refuses such a schema (generations.schemas.check_parameter_schema).
"""

from django.db import migrations


def fix_defaults(apps, schema_editor):
    from generations.schemas import default_within_limits

    AIModel = apps.get_model("generations", "AIModel")
    for model in AIModel.objects.only("id", "parameter_schema").order_by("id"):
        schema = model.parameter_schema or {}
        changed = False
        for spec in (schema.get("properties") or {}).values():
            if isinstance(spec, dict) and "default" in spec:
                fixed = default_within_limits(spec)
                if fixed != spec["default"]:
                    spec["default"], changed = fixed, True
        if changed:
            model.parameter_schema = schema
            model.save(update_fields=["parameter_schema"])


class Migration(migrations.Migration):
    dependencies = [("generations", "0008_generation_create_checks_its_input")]

    # The old defaults were wrong; there is nothing to put back.
    operations = [migrations.RunPython(fix_defaults, migrations.RunPython.noop)]
