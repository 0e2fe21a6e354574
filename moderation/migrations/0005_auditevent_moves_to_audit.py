from django.db import migrations


class Migration(migrations.Migration):
    """AuditEvent now belongs to the audit app; the table and its rows stay (audit.0001 adopts them)."""

    dependencies = [("moderation", "0004_audit_action_choices")]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="AuditEvent")]),
    ]
