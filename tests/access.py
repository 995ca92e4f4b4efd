"""Reusable helpers for access tests: every route of the project, the policy each view declares, a world of
objects with known ids for every role, and what each policy lets each role do.

Policies (docs/admins.md, "Roles"): public, authenticated, annotator, researcher, dashboard,
admin, researcher-read-admin-write (DRF permission classes), and staff for the Django admin site.
"""

import itertools
import re
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from rest_framework.permissions import AllowAny, IsAuthenticated

from annotations import models as m
from inference import models as im

OWN_A, OWN_B = 7001, 7002  # every model gets one row of each id: A is annotator A's world, B annotator B's
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
SAFE = {"GET", "HEAD", "OPTIONS"}
ROLES = (
    "anonymous",
    "no-role",
    "annotator",
    "annotator-other-campaign",
    "annotator-with-dashboards",
    "researcher",
    "admin",
)
_OWNER = {"annotator": OWN_A, "annotator-other-campaign": OWN_B}
_DRF_BUILTIN = {AllowAny: "public", IsAuthenticated: "authenticated"}


@dataclass(frozen=True)
class Route:
    """One URL pattern: its full name, the view, and the names of its URL arguments."""

    name: str
    namespace: str
    callback: object
    kwargs: tuple[str, ...]
    pattern: str


def _kwargs_of(pattern) -> list[str]:
    if hasattr(pattern, "converters"):
        return list(pattern.converters) or list(pattern.regex.groupindex)
    return list(pattern.regex.groupindex)


def project_routes() -> list[Route]:
    """Every URL pattern of the project, recursively, with its namespaced name."""
    found: list[Route] = []

    def walk(patterns, namespace: str, kwargs: list[str], prefix: str) -> None:
        for entry in patterns:
            names = kwargs + _kwargs_of(entry.pattern)
            if isinstance(entry, URLResolver):
                inner = (
                    ":".join(n for n in (namespace, entry.namespace) if n) if entry.namespace else namespace
                )
                walk(entry.url_patterns, inner, names, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                full = f"{namespace}:{entry.name}" if namespace and entry.name else (entry.name or "")
                found.append(
                    Route(full, namespace, entry.callback, tuple(names), prefix + str(entry.pattern))
                )

    walk(get_resolver().url_patterns, "", [], "")
    return found


def route_policy(route: Route) -> str | None:  # noqa: PLR0911 - one answer per kind of view
    """The access policy a route's view declares, or None when it declares none (or several)."""
    if route.namespace == "admin":
        return "public" if route.name == "admin:login" else "staff"
    declared = getattr(route.callback, "access_policy", None)
    if declared:
        return declared
    view_class = getattr(route.callback, "cls", None)
    if view_class is None:
        return None
    initkwargs = getattr(route.callback, "initkwargs", {}) or {}
    classes = initkwargs.get("permission_classes", view_class.permission_classes)
    policies = set()
    for cls in classes:
        policy = getattr(cls, "access_policy", None) or _DRF_BUILTIN.get(cls)
        if policy is None:
            return None
        policies.add(policy)
    if not policies:
        return "public"
    specific = policies - {"authenticated"}
    if len(specific) > 1:
        return None
    return specific.pop() if specific else "authenticated"


_ALLOWED = {
    "public": set(ROLES),
    "authenticated": set(ROLES) - {"anonymous"},
    "admin": {"admin"},
    "staff": {"admin"},
    "researcher": {"researcher", "admin"},
    "dashboard": {"researcher", "admin", "annotator-with-dashboards"},
    "annotator": {"annotator", "annotator-other-campaign", "annotator-with-dashboards"},
    "campaign-member": {
        "annotator",
        "annotator-other-campaign",
        "annotator-with-dashboards",
        "researcher",
        "admin",
    },
}
_SCOPED = {"annotator", "campaign-member"}  # annotators reach only their own campaigns' objects


def policy_allows(policy: str, role: str, method: str, owner: int | None) -> bool:
    """Whether `policy` lets `role` use `method` on a URL naming objects of `owner`'s world (None: no ids)."""
    if policy == "researcher-read-admin-write":
        policy = "researcher" if method in SAFE else "admin"
    if policy == "campaign-member-read-researcher-write":
        policy = "campaign-member" if method in SAFE else "researcher"
    allowed = role in _ALLOWED[policy]
    if policy in _SCOPED and owner is not None and role.startswith("annotator"):
        allowed = allowed and _OWNER.get(role) == owner
    return allowed


_CHOICES = re.compile(r"\(\?P<(\w+)>([\w-]+(?:\|[\w-]+)+)\)")  # e.g. (?P<kind>templates|groups)


def route_urls(route: Route) -> list[tuple[str, int | None]]:
    """Concrete URLs for a route: with A's ids and with B's ids (owner None when no id is in it)."""
    if not route.name:
        return []
    urls: dict[str, int | None] = {}
    choices = {name: alternatives.split("|") for name, alternatives in _CHOICES.findall(route.pattern)}
    for own in (OWN_A, OWN_B):
        common = [str(own), f"k{own}", "annotations", "labels", "json"]
        for values in itertools.product(*(choices.get(name, common) for name in route.kwargs)):
            try:
                url = reverse(route.name, kwargs=dict(zip(route.kwargs, values, strict=True)))
            except NoReverseMatch:
                continue
            depends = any(v in {str(own), f"k{own}"} for v in values)
            urls.setdefault(url, own if depends else None)
            break
    return list(urls.items())


# Ids no row can have: past the 64-bit primary key (the value the fuzzer sent), zero, negative, not a
# number, a float, and digits that overflow. Every route answers them without a 500.
BAD_IDS = ("9223372036854775808", "5525419708553747891409125376", "0", "-1", "abc", "1.5", "1e3")
FREE_TEXT_BAD_IDS = ("5525419708553747891409125376", "abc")  # the admin site's ids: its own view checks them


def route_bad_id_urls(route: Route) -> list[tuple[str, bool]]:
    """The route's URL with each of its ids replaced by every BAD_IDS value, and whether the id is checked
    by the `id` converter (True: the route must answer 404) or is free text such as the admin site's
    `<path:object_id>` (False: the view decides, but never with a 500)."""
    built = [url for url, owner in route_urls(route) if owner == OWN_A]
    if not built or f"/{OWN_A}/" not in built[0]:
        return []
    converted = "<id:" in route.pattern
    bad_ids = BAD_IDS if converted else FREE_TEXT_BAD_IDS
    return [(built[0].replace(f"/{OWN_A}/", f"/{bad}/"), converted) for bad in bad_ids]


def _pk(model, own, **fields):
    return model.objects.create(pk=own, **fields)


def access_world(make_user) -> dict[str, object]:
    """Users of every role (annotator A has id 7001, B 7002) and rows of ids 7001 and 7002 in every model."""
    from django.contrib.auth.models import Group as RoleGroup

    user_model = get_user_model()
    annotator_role = RoleGroup.objects.get(name="annotator")
    users = {
        "no-role": make_user(None, "matrix-norole"),
        "annotator-with-dashboards": make_user("annotator", "matrix-ann-dash"),
        "researcher": make_user("researcher", "matrix-researcher"),
        "admin": make_user("admin", "matrix-admin"),
    }
    for role, own in _OWNER.items():  # the two annotators have the ids their worlds use
        users[role] = user_model.objects.create_user(pk=own, username=f"matrix-{role}", password="x")
        users[role].groups.add(annotator_role)
    dash = users["annotator-with-dashboards"]
    dash.user_permissions.add(Permission.objects.get(codename="view_dashboard"))
    now = timezone.now()
    for own, annotator in ((OWN_A, users["annotator"]), (OWN_B, users["annotator-other-campaign"])):
        scheme = _pk(m.LabelScheme, own, key=f"k{own}", name=f"scheme {own}")
        category = _pk(
            m.LabelCategory,
            own,
            scheme=scheme,
            key=f"k{own}",
            name="c",
            definition="d",
            shortcut="1",
            order=1,
        )
        axis = _pk(m.GroupAxis, own, key=f"k{own}", name=f"axis {own}")
        group = _pk(m.Group, own, axis=axis, key=f"k{own}", name=f"group {own}")
        member = _pk(m.GroupMember, own, group=group, value=f"member {own}")
        template = _pk(m.PromptTemplate, own, key=f"k{own}", text="{name} went")
        prompt_set = _pk(m.PromptSet, own, name=f"set {own}")
        prompt = _pk(
            m.Prompt,
            own,
            prompt_set=prompt_set,
            position=0,
            key=f"k{own}",
            text="p",
            template=template,
            group=group,
            member=member,
        )
        endpoint = _pk(im.ModelEndpoint, own, name=f"model {own}", served_model_name="m")
        run = _pk(im.GenerationRun, own, name=f"run {own}", prompt_set=prompt_set)
        run.endpoints.set([endpoint])
        output = _pk(
            im.Output, own, run=run, prompt=prompt, endpoint=endpoint, sample_index=0, status="done", text="o"
        )
        campaign = _pk(m.Campaign, own, name=f"campaign {own}", scheme=scheme, labels_per_output=1)
        campaign.annotators.set([annotator])
        item = _pk(
            m.CampaignItem,
            own,
            campaign=campaign,
            output=output,
            run=run,
            endpoint=endpoint,
            prompt=prompt,
            rank=0,
            label_count=1,
            label_pattern=str(category.pk),
            label_signature=f"{annotator.pk}:{category.pk}",
            status="complete",
            final_category=category,
            final_source="unanimous",
        )
        _pk(m.Assignment, own, item=item, annotator=annotator, status="done", leased_at=now, expires_at=now)
        label = _pk(m.Label, own, item=item, annotator=annotator, category=category, note="n")
        m.LabelHistory.objects.bulk_create(  # save() refuses rows with a primary key (append-only)
            [m.LabelHistory(pk=own, label=label, changed_by=annotator, new_category=category)]
        )
        _pk(m.Adjudication, own, item=item, category=category, adjudicator=users["researcher"], reason="r")
        scorer = _pk(
            im.Scorer,
            own,
            name=f"scorer-{own}",
            kind=im.Scorer.Kind.STRING_MATCH,
            scheme=scheme,
            config={"preset": "xstest", "refusal_category": f"k{own}", "otherwise_category": f"k{own}"},
            version=f"v{own}",
        )
        score_run = _pk(
            im.ScoreRun,
            own,
            name=f"score run {own}",
            scorer=scorer,
            scorer_version=f"v{own}",
            campaign=campaign,
        )
        _pk(
            im.Score,
            own,
            run=score_run,
            scorer=scorer,
            scorer_version=f"v{own}",
            output=output,
            status="done",
            category=category,
        )
        _pk(m.AuditEvent, own, action="test", target_type="annotations.campaign", target_id=str(own))
    return users


def assert_hidden(response) -> None:
    """The object behind a guessed id is neither shown nor confirmed: 403 or 404, never data or a 500."""
    assert response.status_code in {403, 404}, f"{response.status_code}: expected 403 or 404"
    assert not response.get("Content-Disposition"), "a download was served"
