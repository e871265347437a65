"""Forms of the dashboard. They check shapes only; the rules live in the services."""

from django import forms

from annotation import rules
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
    PREFERENCES = [(p.value, p.canonical_words) for p in rules.PREFERENCES]
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


class RoundCreateForm(forms.Form):
    """The next round: a succeeded policy run (or a registered model), prompts, sampling, models."""

    source_run = forms.ModelChoiceField(queryset=None, required=False, label="Policy run",
                                        help_text="A succeeded policy run; its reward model scores the candidates.")
    source_model = forms.CharField(required=False, max_length=500, label="…or a registered model",
                                   help_text="A hub id or a path on the GPU host (then choose the previous batch).")
    previous_batch = forms.ModelChoiceField(queryset=None, required=False, label="Previous batch",
                                            help_text="Default: the batch the policy run was trained on.")
    use_previous_prompts = forms.BooleanField(required=False, initial=True, label="Use the previous batch's prompts")
    prompts_file = forms.FileField(required=False, label="More prompts (JSONL)", help_text='One {"prompt": "..."} per line.')
    responses_per_prompt = forms.IntegerField(min_value=1, max_value=16, initial=2, label="Responses per prompt and model")
    temperature = forms.FloatField(min_value=0.0, max_value=5.0, initial=0.7)
    top_p = forms.FloatField(min_value=0.01, max_value=1.0, initial=0.95, label="Top-p")
    max_new_tokens = forms.IntegerField(min_value=1, max_value=8192, initial=128, label="Max new tokens")
    seed = forms.IntegerField(min_value=0, initial=0)
    models = forms.MultipleChoiceField(choices=[("new", "New policy"), ("previous", "Previous policy"), ("reference", "Reference model")],
                                       initial=["new", "previous"], widget=forms.CheckboxSelectMultiple, label="Models to sample")
    n_pairs = forms.IntegerField(min_value=1, required=False, label="Pairs", help_text="Empty: prompts × responses per prompt.")
    share_uncertainty = forms.FloatField(min_value=0, max_value=1, initial=0.4, label="Share: uncertainty")
    share_disagreement = forms.FloatField(min_value=0, max_value=1, initial=0.2, label="Share: disagreement")
    share_random = forms.FloatField(min_value=0, max_value=1, initial=0.3, label="Share: random")
    share_anchor = forms.FloatField(min_value=0, max_value=1, initial=0.1, label="Share: anchors")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from annotation.models import Batch
        from training.models import RunKind, RunStatus, TrainingRun

        self.fields["source_run"].queryset = TrainingRun.objects.filter(
            status=RunStatus.SUCCEEDED, kind__in=[RunKind.PPO, RunKind.DPO, RunKind.GRPO, RunKind.RLOO]).select_related("export__batch")
        self.fields["source_run"].label_from_instance = lambda r: f"#{r.pk} {r.get_kind_display()} · {r.export.batch.name}" + (" · DEMO" if r.is_demo else "")
        self.fields["previous_batch"].queryset = Batch.objects.all()

    def options(self) -> dict:
        v = self.cleaned_data
        return {
            "responses_per_prompt": v["responses_per_prompt"], "temperature": v["temperature"], "top_p": v["top_p"],
            "max_new_tokens": v["max_new_tokens"], "seed": v["seed"], "models": v["models"], "n_pairs": v["n_pairs"],
            "shares": {k: v[f"share_{k}"] for k in ("uncertainty", "disagreement", "random", "anchor")},
        }
