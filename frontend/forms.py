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
                           help_text='One JSON object per line: {"prompt", "response_a", "response_b"} or {"prompt", "completions": [...]}. '
                                     'Big files are imported in the background.')

    def clean_file(self):
        from django.conf import settings

        upload = self.cleaned_data["file"]
        limit = settings.CLINPREF["MAX_UPLOAD_BYTES"]
        if upload.size > limit:
            raise forms.ValidationError(
                f"The file has {upload.size:,} bytes; uploads take up to {limit:,}. Import it with `manage.py import_pairs`.")
        return upload


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


class AdjudicationForm(forms.Form):
    PREFERENCES = [(-2, "A much better"), (-1, "A better"), (0, "About the same"), (1, "B better"), (2, "B much better")]
    preference = forms.TypedChoiceField(choices=PREFERENCES, coerce=int, widget=forms.RadioSelect,
                                        label="Final preference (canonical A / B)")
    a_unsafe = forms.BooleanField(required=False, label="Response A is unsafe")
    b_unsafe = forms.BooleanField(required=False, label="Response B is unsafe")
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), label="Note",
                           help_text="Why this is the final decision. Kept in the audit trail.")


class ExportCreateForm(forms.Form):
    batch = forms.ModelChoiceField(queryset=None, empty_label=None, help_text="Closed or exported batches.")
    policy = forms.ChoiceField(required=False, choices=[("", "Default")])
    ties = forms.ChoiceField(required=False, choices=[("", "Default")])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from annotation.models import Batch, BatchState

        self.fields["batch"].queryset = Batch.objects.filter(state__in=[BatchState.CLOSED, BatchState.EXPORTED])
        try:
            from annotation.exports import POLICIES, TIE_MODES
        except ImportError:  # the export module is built elsewhere; defaults still work
            POLICIES, TIE_MODES = (), ()
        self.fields["policy"].choices = [("", "Default")] + [(p, p.replace("_", " ")) for p in POLICIES]
        self.fields["ties"].choices = [("", "Default")] + [(t, t.replace("_", " ")) for t in TIE_MODES]

    def params(self) -> dict:
        return {k: self.cleaned_data[k] for k in ("policy", "ties") if self.cleaned_data.get(k)}


class RetrainForm(forms.Form):
    export = forms.ModelChoiceField(queryset=None, empty_label=None, label="Export snapshot")
    pipeline = forms.ChoiceField(choices=[])
    base_model = forms.CharField(required=False, max_length=500, label="Base model (optional)",
                                 help_text="Model id or path; empty uses the configured default (or the demo model).")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from annotation.models import ExportSnapshot
        from training.configs import PIPELINES

        self.fields["export"].queryset = ExportSnapshot.objects.select_related("batch")
        self.fields["export"].label_from_instance = lambda s: f"{s.batch.name} · v{s.version}"
        self.fields["pipeline"].choices = [(p, p) for p in PIPELINES]
