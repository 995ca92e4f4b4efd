"""The role matrix: every route of the project x every role x every method, checked against the policy its
view declares (docs/admins.md, "Roles"). New views are covered without editing this file; a
view without a declared policy fails `test_every_route_declares_a_policy`.

URLs get the ids of real objects: those of annotator A's campaign (7001) and of annotator B's (7002), so
an annotator also tries every id that belongs to someone else. Nothing may answer 500. Every route with an
id is also tried with ids that no row can have (out of the 64-bit range, zero, negative, not a number):
routes that take ids through the `id` converter answer 404, the admin site's free-text ids never a 500.
"""

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from tests.access import (
    METHODS,
    OWN_A,
    OWN_B,
    ROLES,
    access_world,
    policy_allows,
    project_routes,
    route_bad_id_urls,
    route_policy,
    route_urls,
)

DENIED = {401, 403, 404, 405}
# Inside the admin site these refuse everyone by design: the audit log and label history are append-only,
# the dashboard tallies are kept by database triggers (read-only), and autocomplete answers only with its
# query parameters.
_TALLIES = (  # and the sampling frame, fixed when its campaign was created
    "admin:annotations_campaignitemtally",
    "admin:annotations_labelsettally",
    "admin:annotations_scoretally",
    "admin:annotations_campaignframeoutput",
    "admin:annotations_apitoken",  # tokens: listed and revoked (an action), never added or edited there
)
ADMIN_REFUSES_BY_DESIGN = (
    {("admin:annotations_auditevent_delete", method) for method in METHODS}
    | {("admin:annotations_labelhistory_delete", method) for method in METHODS}
    | {("admin:autocomplete", method) for method in METHODS}
    | {(f"{tally}_{view}", method) for tally in _TALLIES for view in ("add", "delete") for method in METHODS}
    | {(f"{tally}_change", "POST") for tally in _TALLIES}
    | {
        ("admin:annotations_auditevent_change", "POST"),
        ("admin:annotations_labelhistory_change", "POST"),
    }
)


def _is_login_redirect(response) -> bool:
    location = response.headers.get("Location", "")
    return (
        response.status_code in {301, 302}
        and location.startswith((reverse("login"), reverse("admin:login")))
        and "next=" in location
    )


def _outcome(client, response) -> str:
    """server error, denied (401, 403, or the login page), not found (404, 405), or allowed."""
    for _ in range(3):  # a redirect elsewhere (e.g. admin logout -> admin index) counts as where it leads
        if response.status_code not in {301, 302} or _is_login_redirect(response):
            break
        response = client.get(response.headers["Location"])
    if response.status_code >= 500:
        return "server error"
    if response.status_code in {401, 403} or _is_login_redirect(response):
        return "denied"
    if response.status_code in DENIED:
        return "not found"
    return "allowed"


def test_every_route_declares_a_policy(db):
    undeclared = [
        f"{route.pattern} (name {route.name}, view {getattr(route.callback, '__qualname__', route.callback)})"
        for route in project_routes()
        if route_policy(route) is None and route.name
    ]
    assert not undeclared, (
        "These routes declare no access policy (role_required / access_policy on the view, or permission "
        "classes with `access_policy`):\n" + "\n".join(undeclared)
    )


def test_every_route_is_reachable_with_real_ids(db):
    unreachable = [route.pattern for route in project_routes() if route.name and not route_urls(route)]
    assert not unreachable, "Could not build a URL for: " + ", ".join(unreachable)


@pytest.mark.parametrize("role", ROLES)
def test_role_matrix(role, make_user, default_scheme):
    users = access_world(make_user)
    client = Client(raise_request_exception=False)

    def login() -> str:
        if role != "anonymous":
            client.force_login(users[role])
        return client.cookies.get(settings.SESSION_COOKIE_NAME).value if role != "anonymous" else ""

    session = login()
    violations = []
    checked = 0
    for route in project_routes():
        policy = route_policy(route)
        if policy is None:
            continue  # reported by test_every_route_declares_a_policy
        for url, owner in route_urls(route):
            for method in METHODS:
                response = getattr(client, method.lower())(url)
                checked += 1
                outcome = _outcome(client, response)
                allowed = (
                    policy_allows(policy, role, method, owner)
                    and (route.name, method) not in ADMIN_REFUSES_BY_DESIGN
                )
                if outcome == "server error" or (allowed and outcome == "denied"):
                    violations.append(f"{method} {url} [{policy}]: {response.status_code}, expected access")
                elif not allowed and outcome == "allowed":
                    violations.append(f"{method} {url} [{policy}]: {response.status_code}, expected refusal")
                cookie = client.cookies.get(settings.SESSION_COOKIE_NAME)
                if role != "anonymous" and (cookie is None or cookie.value != session):
                    session = login()  # a logout route ended the session
    assert checked > 100
    assert not violations, (
        f"{role}: {len(violations)} of {checked} requests contradict the policy:\n" + "\n".join(violations)
    )


@pytest.mark.parametrize("role", ROLES)
def test_out_of_range_and_malformed_ids_never_reach_a_view(role, make_user, default_scheme):
    users = access_world(make_user)
    client = Client(raise_request_exception=False)
    if role != "anonymous":
        client.force_login(users[role])
    violations = []
    checked = 0
    for route in project_routes():
        for url, converted in route_bad_id_urls(route):
            for method in METHODS:
                response = getattr(client, method.lower())(url)
                checked += 1
                if response.status_code >= 500 or (converted and response.status_code != 404):
                    violations.append(f"{method} {url}: {response.status_code}")
                if role != "anonymous" and client.cookies.get(settings.SESSION_COOKIE_NAME) is None:
                    client.force_login(users[role])  # a logout route ended the session
    assert checked > 500
    assert not violations, f"{role}: {len(violations)} of {checked} requests:\n" + "\n".join(violations)


# Every query parameter some page or API list reads, and values no row can match: a NUL character (which
# PostgreSQL text cannot hold), ids past the 64-bit range, negatives, garbage and an overlong string.
QUERY_PARAMETERS = (
    "q", "group", "template", "campaign", "run", "model", "axis", "source", "status", "action", "page",
    "all", "format", "table", "bootstrap", "kind", "file_format", "after", "scorer",
)  # fmt: skip
HOSTILE_QUERY_VALUES = ("a\x00b", "9223372036854775808", "-1", "0", "%", "x" * 5000)


@pytest.mark.parametrize("role", ["admin", "annotator-with-dashboards"])
def test_hostile_query_parameters_never_cause_a_server_error(role, make_user, default_scheme):
    users = access_world(make_user)
    client = Client(raise_request_exception=False)
    client.force_login(users[role])
    violations, checked = [], 0
    for route in project_routes():
        if route.namespace == "admin" or "logout" in route.name:
            continue
        for url, owner in route_urls(route):
            if owner == OWN_B or client.get(url).status_code != 200:
                continue  # B's URLs run the same code as A's; a refused page reads no parameter
            for value in HOSTILE_QUERY_VALUES:
                # One parameter at a time (a bad campaign would stop the view before it reads q), then all.
                queries = [{name: value} for name in QUERY_PARAMETERS] + [
                    dict.fromkeys(QUERY_PARAMETERS, value)
                ]
                for query in queries:
                    response = client.get(url, query)
                    checked += 1
                    if response.status_code >= 500:
                        names = next(iter(query)) if len(query) == 1 else "all parameters"
                        violations.append(f"GET {url} {names}={value[:20]!r}: {response.status_code}")
    assert checked > 500
    assert not violations, f"{len(violations)} of {checked} requests:\n" + "\n".join(violations)


# Routes that need query parameters to answer 200, with the world's ids: the matrix above calls them bare
# (a 400 counts as reached), so here every role calls them with real ids and hostile values of each one.
WORLD_QUERIES = {  # B's scorer has B's scheme: with A's pilot it is refused (a 400), tried below too
    "api-stats-plan": {"pilot": str(OWN_A), "scorer": str(OWN_A), "half_width": "0.03"},
}
WORLD_HOSTILE_VALUES = (*HOSTILE_QUERY_VALUES, str(OWN_B))


@pytest.mark.parametrize("role", ROLES)
def test_routes_with_required_parameters_follow_the_policy_with_the_worlds_ids(
    role, make_user, default_scheme
):
    users = access_world(make_user)
    client = Client(raise_request_exception=False)
    if role != "anonymous":
        client.force_login(users[role])
    routes = {route.name: route for route in project_routes()}
    violations = []
    for name, query in WORLD_QUERIES.items():
        url = reverse(name)
        allowed = policy_allows(route_policy(routes[name]), role, "GET", None)
        response = client.get(url, query)
        if (response.status_code != 200) if allowed else (_outcome(client, response) != "denied"):
            violations.append(f"GET {url} {query}: {response.status_code}")
        for key in query:
            for value in WORLD_HOSTILE_VALUES if key != "half_width" else HOSTILE_QUERY_VALUES:
                response = client.get(url, {**query, key: value})
                if response.status_code >= 500 or (allowed and response.status_code != 400):
                    violations.append(f"GET {url} {key}={value[:20]!r}: {response.status_code}")
    assert not violations, f"{role}:\n" + "\n".join(violations)
