"""Base classes every API view inherits, so none can run as the database owner.

``tests/velro/test_api_views_use_rls.py`` walks the URL patterns and fails on any API
view that does not inherit :class:`velro.rls.RLSViewMixin`.
"""

from rest_framework import mixins, serializers, viewsets
from rest_framework.views import APIView

from velro.rls import RLSViewMixin


class BaseAPIView(RLSViewMixin, APIView):
    """An API view for a command or a resource that is not a model."""


class BaseGenericViewSet(RLSViewMixin, viewsets.GenericViewSet):
    """A viewset; subclasses add the mixins they serve and a scoped ``get_queryset``."""


class BaseReadOnlyModelViewSet(RLSViewMixin, viewsets.ReadOnlyModelViewSet):
    pass


class BaseModelViewSet(
    RLSViewMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    pass


class StrictInputMixin:
    """Reject input keys the serializer would silently ignore.

    DRF drops unknown and read-only keys without a word; a client that sends
    ``credits_balance`` would believe it had changed it. Here it gets a 400 naming the
    field, and nothing is saved.
    """

    def to_internal_value(self, data):
        if hasattr(data, "keys"):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            errors = {}
            for key in data.keys():
                if key in writable:
                    continue
                if key in self.fields:
                    errors[key] = ["This field is read-only."]
                else:
                    errors[key] = ["Unknown field."]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)
