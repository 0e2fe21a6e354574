from django.contrib.auth.management import create_permissions
from django.db import migrations

# The roles as they were when this migration was written (AuditEvent was moderation's then); later
# migrations change them, so this one never depends on today's moderation.roles.
ROLE_PERMISSIONS: dict[str, list[str]] = {
    "contributor": ["moderation.add_submission"],
    "moderator": [
        "moderation.review_submission",
        "moderation.view_all_submissions",
        "moderation.view_auditevent",
    ],
    "admin": [
        "moderation.add_submission",
        "moderation.review_submission",
        "moderation.view_all_submissions",
        "moderation.view_auditevent",
        "moderation.view_statistics",
        "moderation.configure_detector",
        "moderation.change_decisionreason",
        "moderation.add_decisionreason",
        "detection.change_modelsetting",
    ],
}

REASONS = [
    ("verified-photograph", "Verified as a genuine photograph", "approve"),
    ("camera-evidence", "Camera originals or provenance support it", "approve"),
    ("detector-false-positive", "Detector false positive", "approve"),
    ("ai-generated", "AI-generated image", "reject"),
    ("ai-composite", "Composite or edit with generative AI", "reject"),
    ("undeclared-ai", "Generative AI used but not declared", "reject"),
    ("provenance-mismatch", "Provenance metadata contradicts the claim", "reject"),
]


def roles_and_reasons_create(apps, schema_editor):
    # Permissions are normally created after all migrations; the groups need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        for dotted in perms:
            app_label, codename = dotted.split(".")
            group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    DecisionReason = apps.get_model("moderation", "DecisionReason")
    for position, (code, label, applies_to) in enumerate(REASONS):
        DecisionReason.objects.get_or_create(
            code=code, defaults={"label": label, "applies_to": applies_to, "position": position}
        )


class Migration(migrations.Migration):
    dependencies = [
        ("moderation", "0001_initial"),
        ("detection", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(roles_and_reasons_create, migrations.RunPython.noop)]
