"""Forms of the dashboard. They check shapes only; the rules live in the services."""

from django import forms

from annotation.models import RationalePolicy, Specialty


class BatchCreateForm(forms.Form):
    name = forms.CharField(max_length=200)
    specialty = forms.ModelChoiceField(queryset=Specialty.objects.all(), empty_label=None)
    raters_per_pair = forms.IntegerField(min_value=1, max_value=20, initial=3, help_text="Independent judgments per pair.")
    rationale_policy = forms.ChoiceField(choices=RationalePolicy.choices, initial=RationalePolicy.OPTIONAL)
    calibration_rate = forms.FloatField(min_value=0.0, max_value=1.0, initial=0.1,
                                        help_text="Share of requests served a calibration (gold) pair.")
    lease_minutes = forms.IntegerField(min_value=1, max_value=24 * 60, initial=15,
                                       help_text="How long a physician holds a pair before it returns to the pool.")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class PairsUploadForm(forms.Form):
    file = forms.FileField(label="JSONL file of pairs",
                           help_text='One JSON object per line: {"prompt", "response_a", "response_b"} or {"prompt", "completions": [...]}.')


class BatchCloseForm(forms.Form):
    confirm = forms.BooleanField(label="I understand that closing is final.")
    force = forms.BooleanField(required=False, label="Close although some pairs lack judgments")
    override_reason = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}),
        label="Override reason (optional)",
        help_text="Written reason to start training even if agreement is below the batch's thresholds.",
    )


class AuditFilterForm(forms.Form):
    user = forms.CharField(required=False, label="User name")
    batch = forms.IntegerField(required=False, min_value=1, label="Batch id")
    object_type = forms.CharField(required=False, label="Object type", help_text="e.g. batch, judgment, profile")
    object_id = forms.CharField(required=False, label="Object id")
    action = forms.CharField(required=False, label="Action starts with", help_text="e.g. batch. or judgment.")


class RaterActiveForm(forms.Form):
    is_active = forms.BooleanField(required=False)
