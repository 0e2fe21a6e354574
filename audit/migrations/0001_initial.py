import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import audit.actions


def content_type_move(apps, schema_editor):
    # The permission rows (view_auditevent and the groups holding it) follow the model to its new app.
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="audit", model="auditevent").exists():
        ContentType.objects.filter(app_label="moderation", model="auditevent").update(app_label="audit")


def content_type_return(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="audit", model="auditevent").update(app_label="moderation")


class Migration(migrations.Migration):
    """Adopts moderation's audit table as it is: no schema change, only the model's home."""

    initial = True

    dependencies = [
        ("moderation", "0005_auditevent_moves_to_audit"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="AuditEvent",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("action", models.CharField(choices=audit.actions.action_choices, max_length=32)),
                        ("from_state", models.CharField(blank=True, max_length=16)),
                        ("to_state", models.CharField(blank=True, max_length=16)),
                        ("reason", models.TextField(blank=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                        (
                            "actor",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "submission",
                            models.ForeignKey(
                                null=True,
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="audit_events",
                                to="moderation.submission",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "moderation_auditevent",
                        "ordering": ["-created_at", "-id"],
                        "indexes": [
                            models.Index(fields=["action", "-created_at"], name="audit_action_idx"),
                            models.Index(fields=["actor", "-created_at"], name="audit_actor_idx"),
                        ],
                    },
                ),
            ]
        ),
        migrations.RunPython(content_type_move, content_type_return),
    ]
