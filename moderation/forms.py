from django import forms

from common.errors import Invalid
from moderation.models import Decision, DecisionReason, Scenery, Verdict
from moderation.reporting import SCENERY_BY_CHOICES
from moderation.selectors import QUEUE_ORDERINGS

DECLARED_AI_VALUES = {
    **dict.fromkeys(("1", "true", "yes", "on"), True),
    **dict.fromkeys(("0", "false", "no", "off", ""), False),
}


def declared_ai_parse(value: object) -> bool:
    """The upload's "made with generative AI" flag, read alike by the upload page and the API: anything but a
    yes or a no is refused, never read as no."""
    try:
        return DECLARED_AI_VALUES[str(value).strip().lower()]
    except KeyError:
        raise Invalid(
            f"declared_ai must be true or false (1/0, yes/no, on/off), not {str(value)[:40]!r}.", field="declared_ai"
        ) from None


class DecisionForm(forms.Form):
    outcome = forms.ChoiceField(choices=Decision.Outcome.choices, widget=forms.HiddenInput)
    reason = forms.ModelChoiceField(queryset=DecisionReason.objects.filter(active=True), to_field_name="code")
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=2000)

    def clean(self) -> dict:
        data = super().clean()
        reason, outcome = data.get("reason"), data.get("outcome")
        if reason and outcome and reason.applies_to != outcome:
            self.add_error("reason", "That reason does not fit this decision.")
        return data


class IdListField(forms.Field):
    """Checked rows' ids; whether each can be decided is the service's call, item by item."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> list[int]:
        try:
            return [int(v) for v in value or []]
        except (TypeError, ValueError) as exc:
            raise forms.ValidationError("Select items from the queue.") from exc


class BulkDecisionForm(DecisionForm):
    ids = IdListField(error_messages={"required": "Tick at least one item."})


class AppealForm(forms.Form):
    message = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}),
        max_length=4000,
        help_text="Explain why the image is a genuine photograph: how it was taken, what you can show.",
    )


class _DateRange(forms.Form):
    date_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))


class QueueFilterForm(_DateRange):
    scenery = forms.ChoiceField(choices=[("", "All sceneries"), *Scenery.choices], required=False)
    verdict = forms.ChoiceField(choices=[("", "All verdicts"), *Verdict.choices], required=False)
    probability_min = forms.FloatField(min_value=0, max_value=1, required=False, label="P(AI) from")
    probability_max = forms.FloatField(min_value=0, max_value=1, required=False, label="to")
    # Free text with suggestions: a model that ran once can be filtered on after its weights are gone.
    model_name = forms.CharField(
        required=False, max_length=64, label="Analysed by", widget=forms.TextInput(attrs={"list": "model-names"})
    )
    contributor = forms.CharField(required=False, max_length=150)
    ordering = forms.ChoiceField(
        choices=[("likely-ai", "Most likely AI first"), ("oldest", "Oldest first")], required=False
    )

    def clean_ordering(self) -> str:
        return self.cleaned_data["ordering"] if self.cleaned_data["ordering"] in QUEUE_ORDERINGS else "likely-ai"


class AuditFilterForm(_DateRange):
    actor = forms.CharField(required=False, max_length=150, help_text='A username, or "system".')
    action = forms.ChoiceField(required=False)
    submission_id = forms.IntegerField(required=False, min_value=1, label="Submission #")

    def __init__(self, *args, actions: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [("", "All actions"), *((a, a) for a in actions)]


class StatisticsFilterForm(_DateRange):
    model_name = forms.ChoiceField(required=False, label="Model")
    scenery_by = forms.ChoiceField(required=False, label="Scenery", choices=SCENERY_BY_CHOICES)

    def __init__(self, *args, model_names: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model_name"].choices = [("", "Active model"), *((n, n) for n in model_names)]
