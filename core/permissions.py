"""Role gates. Ownership is checked in selectors, which answer 404 for "missing" and "not yours"."""

from rest_framework.permissions import BasePermission


class _RoleGate(BasePermission):
    role = ""

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.role == self.role)


class IsConsumer(_RoleGate):
    role = "consumer"


class IsMerchant(_RoleGate):
    role = "merchant"


class IsRegulator(_RoleGate):
    role = "regulator"
