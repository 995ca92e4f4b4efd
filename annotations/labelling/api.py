"""Campaign, labelling and adjudication endpoints; the labelling page uses the same JSON endpoints.

Annotators reach only campaigns they are assigned to (404 otherwise), see only their own labels, and see
the model name, or a scorer's suggestion, only when the campaign shows it. The request and response
shapes are in `labelling/serializers.py`.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import PermissionDenied
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.core.api_errors import PERMISSION_DENIED
from annotations.core.exceptions import NotFoundError
from annotations.core.permissions import (
    CampaignMemberReadResearcherWrite,
    IsCampaignMemberOrResearcher,
    IsResearcherRole,
)
from annotations.labelling.campaign_builder import (
    SEARCH_LIMIT_DEFAULT,
    SEARCH_LIMIT_MAX,
    campaign_gold_candidates,
    campaign_gold_search_parse,
    campaign_selection_count,
    campaign_selection_parse,
)
from annotations.labelling.campaigns import SELECTION_KEYS, campaign_create, campaign_delete, campaign_update
from annotations.labelling.selectors import (
    adjudication_queue,
    campaign_annotator_stats,
    campaign_counts,
    campaign_for_annotator,
    campaign_for_researcher,
    campaign_list,
    campaign_progress,
    label_get_mine,
    label_list_mine,
)
from annotations.labelling.serializers import (
    AdjudicateSerializer,
    AdjudicationRowSerializer,
    AnnotatorCampaignSerializer,
    CampaignCreateSerializer,
    CampaignSerializer,
    CampaignUpdateSerializer,
    LabelChangeSerializer,
    LabelSubmitSerializer,
    MyLabelSerializer,
    NextResponseSerializer,
    NextSerializer,
    SkipSerializer,
    label_payload,
    lease_payload,
)
from annotations.labelling.services import (
    assignment_next,
    assignment_skip,
    item_adjudicate,
    label_change,
    label_submit,
)
from annotations.models import Campaign


class CampaignListApi(APIView):
    """GET: campaigns I may see (researchers: all; annotators: mine). POST: create one (researchers)."""

    permission_classes = [CampaignMemberReadResearcherWrite]

    @extend_schema(operation_id="campaigns_list", responses=CampaignSerializer(many=True))
    def get(self, request: Request) -> Response:
        """List campaigns, paginated."""
        campaigns = campaign_list(user=request.user)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(campaigns, request, view=self)
        if IsResearcherRole().has_permission(request, self):
            return paginator.get_paginated_response(CampaignSerializer(page, many=True).data)
        return paginator.get_paginated_response(AnnotatorCampaignSerializer(page, many=True).data)

    @extend_schema(request=CampaignCreateSerializer, responses={201: CampaignSerializer})
    def post(self, request: Request) -> Response:
        """Create a campaign with its items."""
        if not IsResearcherRole().has_permission(request, self):
            raise PermissionDenied(PERMISSION_DENIED)
        serializer = CampaignCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        campaign = campaign_create(actor=request.user, **data)
        campaign.item_count = campaign.items.count()
        return Response(CampaignSerializer(campaign).data, status=status.HTTP_201_CREATED)


def _ids_parameter(name: str, *, required: bool = False) -> OpenApiParameter:
    return OpenApiParameter(
        name,
        OpenApiTypes.INT,
        many=True,
        required=required,
        description=f"{name} ids (repeat the parameter).",
    )


class CampaignSelectionCountApi(APIView):
    """The outputs a campaign selection picks, per model x group, with warnings, before creation."""

    permission_classes = [IsResearcherRole]

    @extend_schema(parameters=[_ids_parameter(key) for key in SELECTION_KEYS], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        """Total, per model, per group and per cell, and warnings (a group missing, unequal cells)."""
        selection = campaign_selection_parse(data=request.query_params)
        return Response(campaign_selection_count(selection=selection))


class CampaignGoldSearchApi(APIView):
    """Finished outputs of the chosen runs whose text (or prompt, or id) matches: gold item candidates."""

    permission_classes = [IsResearcherRole]

    @extend_schema(
        parameters=[
            _ids_parameter("runs", required=True),
            OpenApiParameter("q", OpenApiTypes.STR, description="Text to find in the output or its prompt."),
            OpenApiParameter(
                "limit",
                OpenApiTypes.INT,
                description=f"1..{SEARCH_LIMIT_MAX}, default {SEARCH_LIMIT_DEFAULT}.",
            ),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request) -> Response:
        """The matching outputs, oldest first, each with an excerpt of its text."""
        search = campaign_gold_search_parse(data=request.query_params)
        return Response({"limit": search.limit, "results": campaign_gold_candidates(search=search)})


class CampaignDetailApi(APIView):
    """GET, PATCH (settings, annotators, status) or DELETE (only without labels) one campaign."""

    permission_classes = [IsResearcherRole]

    @extend_schema(responses=CampaignSerializer)
    def get(self, request: Request, campaign_id: int) -> Response:
        """The campaign with its counts."""
        campaign = campaign_for_researcher(user=request.user, campaign_id=campaign_id)
        data = CampaignSerializer(campaign).data
        data["counts"] = campaign_counts(campaign=campaign)
        data["item_count"] = data["counts"]["total"]
        return Response(data)

    @extend_schema(request=CampaignUpdateSerializer, responses=CampaignSerializer)
    def patch(self, request: Request, campaign_id: int) -> Response:
        """Change settings; the selection and labels per output are fixed at creation."""
        campaign = campaign_for_researcher(user=request.user, campaign_id=campaign_id)
        serializer = CampaignUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        campaign = campaign_update(
            actor=request.user, campaign=campaign, annotators=data.pop("annotators", None), **data
        )
        return Response(CampaignSerializer(campaign).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, campaign_id: int) -> Response:
        """Delete a campaign without labels."""
        campaign = campaign_for_researcher(user=request.user, campaign_id=campaign_id)
        campaign_delete(actor=request.user, campaign=campaign)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CampaignStatsApi(APIView):
    """Counts per item status and, per annotator, labels done and accuracy on gold items."""

    permission_classes = [IsResearcherRole]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, campaign_id: int) -> Response:
        """Counts and per-annotator rows."""
        campaign = campaign_for_researcher(user=request.user, campaign_id=campaign_id)
        return Response(
            {
                "counts": campaign_counts(campaign=campaign),
                "annotators": campaign_annotator_stats(campaign=campaign),
            }
        )


class CampaignProgressApi(APIView):
    """My progress and the campaign's, for the labelling page."""

    permission_classes = [IsCampaignMemberOrResearcher]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, campaign_id: int) -> Response:
        """Two aggregate queries."""
        campaign = campaign_for_annotator(user=request.user, campaign_id=campaign_id)
        return Response(campaign_progress(campaign=campaign, annotator=request.user))


class AssignmentNextApi(APIView):
    """Lease the next item (or return the one I already hold); `{"item": null}` when none is left."""

    permission_classes = [IsCampaignMemberOrResearcher]

    @extend_schema(request=NextSerializer, responses=NextResponseSerializer)
    def post(self, request: Request, campaign_id: int) -> Response:
        """A fixed number of queries (pinned in tests)."""
        campaign = campaign_for_annotator(user=request.user, campaign_id=campaign_id)
        serializer = NextSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        after = serializer.validated_data.get("after")
        lease = assignment_next(campaign=campaign, annotator=request.user, after_item_id=after)
        if lease is None:
            return Response({"item": None, "detail": "Nothing left for you to label in this campaign."})
        return Response(
            {"item": lease_payload(lease=lease, campaign=campaign), "expires_at": lease.expires_at}
        )


class LabelListApi(APIView):
    """GET: my labels in the campaign, newest first. POST: submit a label for an item I hold."""

    permission_classes = [IsCampaignMemberOrResearcher]

    @extend_schema(operation_id="campaign_labels_list", responses=MyLabelSerializer(many=True))
    def get(self, request: Request, campaign_id: int) -> Response:
        """My labels, paginated."""
        campaign = campaign_for_annotator(user=request.user, campaign_id=campaign_id)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(
            label_list_mine(campaign=campaign, annotator=request.user), request
        )
        return paginator.get_paginated_response([label_payload(label=lb, campaign=campaign) for lb in page])

    @extend_schema(request=LabelSubmitSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request, campaign_id: int) -> Response:
        """Submit; a fixed number of queries (pinned in tests)."""
        campaign = campaign_for_annotator(user=request.user, campaign_id=campaign_id)
        serializer = LabelSubmitSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        label = label_submit(
            campaign=campaign,
            annotator=request.user,
            item_id=data["item"],
            category_key=data["category"],
            note=data["note"],
            active_seconds=data["active_seconds"],
        )
        return Response({"item": label.item_id, "category": data["category"]}, status=status.HTTP_201_CREATED)


class LabelDetailApi(APIView):
    """GET my label on an item (to go back to it); PATCH changes it, keeping the history."""

    permission_classes = [IsCampaignMemberOrResearcher]

    @extend_schema(responses=MyLabelSerializer)
    def get(self, request: Request, campaign_id: int, item_id: int) -> Response:
        """The item as shown when labelling, with my label and note."""
        campaign = campaign_for_annotator(user=request.user, campaign_id=campaign_id)
        label = label_get_mine(campaign=campaign, annotator=request.user, item_id=item_id)
        return Response(label_payload(label=label, campaign=campaign))

    @extend_schema(request=LabelChangeSerializer, responses=MyLabelSerializer)
    def patch(self, request: Request, campaign_id: int, item_id: int) -> Response:
        """Change category and/or note."""
        campaign = campaign_for_annotator(user=request.user, campaign_id=campaign_id)
        serializer = LabelChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        label_change(
            campaign=campaign,
            annotator=request.user,
            item_id=item_id,
            category_key=data["category"],
            note=data.get("note"),
            active_seconds=data["active_seconds"],
        )
        label = label_get_mine(campaign=campaign, annotator=request.user, item_id=item_id)
        return Response(label_payload(label=label, campaign=campaign))


class AssignmentSkipApi(APIView):
    """Give back an item I hold, with a reason; it is not offered to me again."""

    permission_classes = [IsCampaignMemberOrResearcher]

    @extend_schema(request=SkipSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, campaign_id: int) -> Response:
        """Skip."""
        campaign = campaign_for_annotator(user=request.user, campaign_id=campaign_id)
        serializer = SkipSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        assignment_skip(
            campaign=campaign, annotator=request.user, item_id=data["item"], reason=data["reason"]
        )
        return Response({"item": data["item"], "skipped": True})


def _campaign_for_adjudicator(request: Request, campaign_id: int) -> Campaign:
    if not request.user.has_perm("annotations.adjudicate_campaign"):
        raise NotFoundError("No such campaign.")
    return campaign_for_researcher(user=request.user, campaign_id=campaign_id)


class AdjudicationQueueApi(APIView):
    """Disputed items with every label and note (adjudicators only)."""

    permission_classes = [IsResearcherRole]

    @extend_schema(responses=AdjudicationRowSerializer(many=True))
    def get(self, request: Request, campaign_id: int) -> Response:
        """The queue, paginated; `?all=1` includes items already adjudicated."""
        campaign = _campaign_for_adjudicator(request, campaign_id)
        items = adjudication_queue(
            campaign=campaign, include_adjudicated=request.query_params.get("all") == "1"
        )
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(items, request)
        rows = [
            {
                "item": item.pk,
                "status": item.status,
                "prompt": item.output.prompt.text,
                "output": item.output.text,
                "model": item.output.endpoint.name,
                "labels": [
                    {"annotator": lb.annotator.username, "category": lb.category.key, "note": lb.note}
                    for lb in item.labels.all()
                ],
                "final_category": item.final_category.key if item.final_category else None,
            }
            for item in page
        ]
        return paginator.get_paginated_response(rows)


class ItemAdjudicateApi(APIView):
    """Set the final label of a disputed item with a reason."""

    permission_classes = [IsResearcherRole]

    @extend_schema(request=AdjudicateSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, campaign_id: int, item_id: int) -> Response:
        """Adjudicate."""
        campaign = _campaign_for_adjudicator(request, campaign_id)
        serializer = AdjudicateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        item_adjudicate(
            campaign=campaign,
            adjudicator=request.user,
            item_id=item_id,
            category_key=data["category"],
            reason=data["reason"],
        )
        return Response({"item": item_id, "final_category": data["category"], "status": "adjudicated"})
