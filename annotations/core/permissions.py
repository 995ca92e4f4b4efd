"""DRF permission classes for the three roles; capabilities are Django permissions.

Each class names its `access_policy` (docs/admins.md, "Roles"); the role-matrix test reads it
from a view's `permission_classes` and checks every role and method against it.
"""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from annotations.core.roles import user_is_admin, user_is_annotator, user_is_researcher


class IsAdminRole(BasePermission):
    """Admins only."""

    access_policy = "admin"

    def has_permission(self, request, view) -> bool:
        """Allow admins."""
        return user_is_admin(request.user)


class IsResearcherRole(BasePermission):
    """Researchers and admins."""

    access_policy = "researcher"

    def has_permission(self, request, view) -> bool:
        """Allow researchers and admins."""
        return user_is_researcher(request.user)


class ResearcherReadAdminWrite(BasePermission):
    """Researchers read; only admins write (templates, groups, endpoints, runs)."""

    access_policy = "researcher-read-admin-write"

    def has_permission(self, request, view) -> bool:
        """Reads for researchers, writes for admins."""
        if request.method in SAFE_METHODS:
            return user_is_researcher(request.user)
        return user_is_admin(request.user)


class HasDashboardAccess(BasePermission):
    """Dashboards and statistics: researchers, admins, or anyone granted `view_dashboard`."""

    access_policy = "dashboard"

    def has_permission(self, request, view) -> bool:
        """Allow holders of annotations.view_dashboard."""
        return request.user.is_authenticated and request.user.has_perm("annotations.view_dashboard")


class IsCampaignMemberOrResearcher(BasePermission):
    """Annotators (only their own campaigns: the selectors answer 404 for others) and researchers (all)."""

    access_policy = "campaign-member"

    def has_permission(self, request, view) -> bool:
        """Allow annotators, researchers and admins; which campaigns is decided per object."""
        return user_is_annotator(request.user) or user_is_researcher(request.user)


class CampaignMemberReadResearcherWrite(BasePermission):
    """Reads as IsCampaignMemberOrResearcher (annotators see their campaigns); writes for researchers."""

    access_policy = "campaign-member-read-researcher-write"

    def has_permission(self, request, view) -> bool:
        """Reads for annotators and researchers, writes for researchers."""
        if request.method in SAFE_METHODS:
            return user_is_annotator(request.user) or user_is_researcher(request.user)
        return user_is_researcher(request.user)
