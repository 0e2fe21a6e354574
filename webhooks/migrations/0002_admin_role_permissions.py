from django.contrib.auth.management import create_permissions
from django.db import migrations

ADMIN_PERMISSIONS = ["add_webhook", "change_webhook", "delete_webhook", "view_webhook", "view_webhookdelivery"]


def admin_permissions_grant(apps, schema_editor):
    # Permissions are normally created after all migrations; the admin group needs them now.
    webhooks_config = apps.get_app_config("webhooks")
    webhooks_config.models_module = True
    create_permissions(webhooks_config, apps=apps, verbosity=0)
    webhooks_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    admin, _ = Group.objects.get_or_create(name="admin")
    admin.permissions.add(
        *Permission.objects.filter(content_type__app_label="webhooks", codename__in=ADMIN_PERMISSIONS)
    )


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0001_initial"),
        ("moderation", "0002_roles_and_reasons"),
    ]

    operations = [migrations.RunPython(admin_permissions_grant, migrations.RunPython.noop)]
