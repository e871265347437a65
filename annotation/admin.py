"""Django's admin, for support staff: read-mostly views. Day-to-day work happens in the
dashboard and the API, which go through the services (and so the audit trail)."""

from django.contrib import admin

from annotation import models


@admin.register(models.Specialty)
class SpecialtyAdmin(admin.ModelAdmin):
    list_display = ("name", "slug")


@admin.register(models.Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "role", "specialty", "is_active", "can_adjudicate")
    list_filter = ("role", "specialty", "is_active")


@admin.register(models.Batch)
class BatchAdmin(admin.ModelAdmin):
    list_display = ("name", "specialty", "state", "raters_per_pair", "created_at")
    list_filter = ("state", "specialty")
    readonly_fields = [f.name for f in models.Batch._meta.fields if f.name not in ("description",)]


@admin.register(models.AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "actor", "action", "object_type", "object_id", "batch")
    list_filter = ("action", "object_type")

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False
