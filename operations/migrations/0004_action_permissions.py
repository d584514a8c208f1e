"""Permissions per action, and the groups viewer, operator and admin that bundle them.

Replaces the single ``run_operation`` permission (issue 13/14): a viewer sees bodies masked
and may export them; an operator may also redrive, replay, re-publish and cancel; an admin
may do everything, including unmasked bodies, edit and resend, and delete.
"""

from django.db import migrations

PERMISSIONS = [
    ("view_message_bodies", "Can see DLQ message bodies and event details (masked)"),
    ("view_unmasked", "Can see message bodies unmasked"),
    ("export_messages", "Can export DLQ messages"),
    ("redrive", "Can redrive DLQs"),
    ("replay", "Can replay archived events"),
    ("republish", "Can re-publish events"),
    ("edit_resend", "Can edit and resend a DLQ message"),
    ("delete_messages", "Can delete DLQ messages"),
    ("cancel_operation", "Can cancel operations"),
]
VIEWER = ["view_message_bodies", "export_messages"]
OPERATOR = [*VIEWER, "redrive", "replay", "republish", "cancel_operation"]
GROUPS = {"viewer": VIEWER, "operator": OPERATOR, "admin": [code for code, _ in PERMISSIONS]}


def create_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    ContentType = apps.get_model("contenttypes", "ContentType")
    # Permissions are normally created after migrations (post_migrate); create them now.
    content_type, _ = ContentType.objects.get_or_create(app_label="operations", model="operation")
    by_code = {}
    for codename, name in PERMISSIONS:
        by_code[codename], _ = Permission.objects.get_or_create(
            codename=codename, content_type=content_type, defaults={"name": name}
        )
    for group_name, codenames in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        group.permissions.add(*(by_code[code] for code in codenames))
    Permission.objects.filter(codename="run_operation", content_type=content_type).delete()


def remove_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    Group.objects.filter(name="admin").delete()
    Permission.objects.filter(
        content_type__app_label="operations", codename__in=[code for code, _ in PERMISSIONS]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("operations", "0003_operation_outcomes"),
        ("operations", "0002_groups"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="operation",
            options={
                "ordering": ["-created_at", "-id"],
                "permissions": PERMISSIONS,
            },
        ),
        migrations.RunPython(create_groups, remove_groups),
    ]
