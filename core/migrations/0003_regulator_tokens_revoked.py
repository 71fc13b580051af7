"""Regulators' API tokens issued before the second factor are revoked: from now on a regulator's
token is issued only with the authenticator's code (``POST /api/v1/auth/token`` with ``otp``)."""

from django.db import migrations


def revoke(apps, schema_editor):
    Token = apps.get_model("authtoken", "Token")
    Token.objects.filter(user__role="regulator").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0002_outboxmessage"),
        ("authtoken", "0004_alter_tokenproxy_options"),
    ]

    operations = [migrations.RunPython(revoke, migrations.RunPython.noop)]
