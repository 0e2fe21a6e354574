import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from moderation.roles import ADMIN, CONTRIBUTOR, MODERATOR

DEMO_ACCOUNTS = [("contributor", CONTRIBUTOR), ("moderator", MODERATOR), ("admin", ADMIN)]


class Command(BaseCommand):
    help = "Create (or reset) one demo account per role and print their passwords."

    def handle(self, *args, **options) -> None:
        User = get_user_model()
        for username, role in DEMO_ACCOUNTS:
            user, _ = User.objects.get_or_create(username=username)
            password = secrets.token_urlsafe(9)
            user.set_password(password)
            # Platform admins also get Django's admin site for reasons and model settings.
            user.is_staff = role == ADMIN
            user.save()
            user.groups.set([Group.objects.get(name=role)])
            self.stdout.write(f"  {role:<12} username: {username:<12} password: {password}")
