"""Create the ``viewer`` and ``operator`` groups; operators may run operations."""

from django.db import migrations

PERMISSION = ("run_operation", "Can start, cancel and change DLQ and archive operations")


def create_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    ContentType = apps.get_model("contenttypes", "ContentType")
    # Permissions are normally created after migrations (post_migrate); create it now.
    content_type, _ = ContentType.objects.get_or_create(app_label="operations", model="operation")
    permission, _ = Permission.objects.get_or_create(
        codename=PERMISSION[0], content_type=content_type, defaults={"name": PERMISSION[1]}
    )
    Group.objects.get_or_create(name="viewer")
    operator, _ = Group.objects.get_or_create(name="operator")
    operator.permissions.add(permission)


def remove_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.filter(name__in=["viewer", "operator"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("operations", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
