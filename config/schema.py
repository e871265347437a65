from drf_spectacular.openapi import AutoSchema


class ClinPrefAutoSchema(AutoSchema):
    """Our API classes nest `InputSerializer` / `OutputSerializer` (one pair per operation);
    name their schema components after the API class so they don't collide."""

    def _get_serializer_name(self, serializer, direction, bypass_extensions=False) -> str:
        name = super()._get_serializer_name(serializer, direction, bypass_extensions)
        outer = type(serializer).__qualname__.split(".")
        if len(outer) > 1:
            name = outer[0].removesuffix("Api") + name
        return name

    def get_operation_id(self) -> str:
        # List and detail views of one resource would both be "<name>_retrieve".
        operation_id = super().get_operation_id()
        if self.method == "GET" and not self.path.rstrip("/").endswith("}") and operation_id.endswith("_retrieve"):
            operation_id = operation_id.removesuffix("_retrieve") + "_list"
        return operation_id
