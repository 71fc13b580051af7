import time

import factory
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from core.models import User
from core.services import user_totp_set

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    """A user with ``PASSWORD``; a regulator also gets an authenticator (``totp_code`` reads it)."""

    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"user{n}")
    role = User.Role.CONSUMER

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        user = model_class.objects.create_user(*args, password=PASSWORD, **kwargs)
        if user.needs_second_factor:
            user_totp_set(user=user)
        return user


def totp_code(user, *, offset_steps: int = 0) -> str:
    """The 6 digits ``user``'s authenticator app shows now (or ``offset_steps`` steps of 30 s away)."""
    device = TOTPDevice.objects.get(user=user)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, 0)
    totp.time = time.time() + offset_steps * device.step
    return f"{totp.token():0{device.digits}d}"


def sign_in(client, user):
    """Log ``client`` in as ``user`` without the login pages, as ``force_login`` does; a regulator's
    session is also marked as having passed the second factor (what the code page does), since the
    platform ends a regulator's session without it. Returns the client."""
    client.force_login(user)
    if user.needs_second_factor:
        device = TOTPDevice.objects.filter(user=user).first() or _device_for(user)
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    return client


def _device_for(user) -> TOTPDevice:
    user_totp_set(user=user)
    return TOTPDevice.objects.get(user=user)
